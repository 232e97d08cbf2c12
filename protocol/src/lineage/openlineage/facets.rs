//! The facets the mapping reads, each reduced to the little it needs.
//!
//! Facets are where clients are sloppiest (OpenLineage's own proxy fixtures
//! include an owner without a name and a row count of `"wrong"`), so every
//! reader here is lenient: a facet or field of the wrong shape is skipped
//! with a warning naming it, and the rest of the event still counts. Facets
//! marked `"_deleted": true` are treated as absent. Facets not listed here
//! are ignored.

use super::json::{Obj, Warnings};
use super::tree::Json;

/// The facets read below; parsing skips every other one.
pub(super) const READ_FACETS: [&str; 8] = [
    "documentation",
    "ownership",
    "schema",
    "columnLineage",
    "outputStatistics",
    "errorMessage",
    "parent",
    "sql",
];

/// A `facets` (or `inputFacets`, `outputFacets`) object.
#[derive(Debug, Clone, Default)]
pub(super) struct Facets<'a>(Option<Obj<'a>>);

impl<'a> Facets<'a> {
    /// The facets under `key` of `parent`.
    pub(super) fn of(parent: &Obj<'a>, key: &str, w: &mut Warnings) -> Self {
        Self(w.ok(parent.opt_obj(key)).flatten())
    }

    /// The facet `name`, if present, an object, and not deleted.
    pub(super) fn get(&self, name: &str, w: &mut Warnings) -> Option<Obj<'a>> {
        let facet = w.ok(self.0.as_ref()?.opt_obj(name))??;
        let deleted = matches!(facet.get("_deleted"), Some(Json::Bool(true)));
        (!deleted).then_some(facet)
    }
}

/// `documentation.description`.
pub(super) fn description(facets: &Facets<'_>, w: &mut Warnings) -> Option<String> {
    let doc = facets.get("documentation", w)?;
    let text = w.ok(doc.opt_str("description"))??;
    (!text.is_empty()).then(|| w.clip(&doc.field("description"), text))
}

/// `ownership.owners[].name`, joined with `, ` (owners without a name are
/// skipped with a warning).
pub(super) fn owners(facets: &Facets<'_>, w: &mut Warnings) -> Option<String> {
    let own = facets.get("ownership", w)?;
    let mut names = Vec::new();
    for owner in w.objects(&own, "owners") {
        if let Some(name) = w.ok(owner.req_str("name")) {
            names.push(name);
        }
    }
    (!names.is_empty()).then(|| w.clip(&own.field("owners"), &names.join(", ")))
}

/// One field of a `schema` facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Field {
    /// Its name.
    pub name: String,
    /// Its type, with nested fields as `TYPE<name type, …>`.
    pub kind: Option<String>,
    /// Its description.
    pub description: Option<String>,
}

/// The top-level fields of `schema.fields`. Nested fields are folded into
/// their parent's type text rather than becoming columns: a column id's last
/// dot separates it from its table, so `address.city` cannot be a column.
pub(super) fn schema(facets: &Facets<'_>, w: &mut Warnings) -> Vec<Field> {
    let Some(schema) = facets.get("schema", w) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for f in w.objects(&schema, "fields") {
        let Some(name) = w.ok(f.req_str("name")) else {
            continue;
        };
        let description = w
            .ok(f.opt_str("description"))
            .flatten()
            .filter(|d| !d.is_empty())
            .map(|d| w.clip(&f.field("description"), d));
        out.push(Field {
            name: name.to_owned(),
            kind: type_text(&f, w, 0),
            description,
        });
    }
    out
}

/// `type`, followed by the nested fields in angle brackets.
fn type_text(f: &Obj<'_>, w: &mut Warnings, depth: usize) -> Option<String> {
    let kind = w.ok(f.opt_str("type")).flatten().unwrap_or("");
    let mut nested = Vec::new();
    if depth < 16 {
        for sub in w.objects(f, "fields") {
            if let Some(name) = w.ok(sub.req_str("name")) {
                match type_text(&sub, w, depth + 1) {
                    Some(t) => nested.push(format!("{name} {t}")),
                    None => nested.push(name.to_owned()),
                }
            }
        }
    }
    let text = if nested.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}<{}>", nested.join(", "))
    };
    (!text.is_empty()).then_some(text)
}

/// One input field of a `columnLineage` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct InputField {
    /// The dataset's namespace.
    pub namespace: String,
    /// The dataset's name.
    pub name: String,
    /// The field.
    pub field: String,
    /// `TYPE/SUBTYPE` of each transformation (facet 1-1-0 and later).
    pub transformations: Vec<String>,
    /// Whether a transformation masks the data.
    pub masking: bool,
}

/// One output field of a `columnLineage` facet and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ColumnFlow {
    /// The output field.
    pub field: String,
    /// The input fields.
    pub inputs: Vec<InputField>,
    /// `transformationType` of facet 1-0-x, which describes the whole field.
    pub legacy_type: Option<String>,
    /// `transformationDescription` of facet 1-0-x.
    pub description: Option<String>,
}

/// The `columnLineage` facet: `fields: {col: {inputFields: [...]}}`.
/// `None` when the dataset has no such facet (so SQL may fill in).
pub(super) fn column_lineage(facets: &Facets<'_>, w: &mut Warnings) -> Option<Vec<ColumnFlow>> {
    let facet = facets.get("columnLineage", w)?;
    let mut out = Vec::new();
    let Some(fields) = w.ok(facet.opt_obj("fields")).flatten() else {
        return Some(out);
    };
    for (field, spec) in fields.entries() {
        let Some(spec) = w.ok(Obj::new(spec, fields.field(field))) else {
            continue;
        };
        let mut inputs = Vec::new();
        for input in w.objects(&spec, "inputFields") {
            if let Some(i) = input_field(&input, w) {
                inputs.push(i);
            }
        }
        let text = |w: &mut Warnings, key| {
            w.ok(spec.opt_str(key))
                .flatten()
                .filter(|s| !s.is_empty())
                .map(|s| w.clip(&spec.field(key), s))
        };
        out.push(ColumnFlow {
            field: field.to_owned(),
            inputs,
            legacy_type: text(w, "transformationType"),
            description: text(w, "transformationDescription"),
        });
    }
    Some(out)
}

fn input_field(input: &Obj<'_>, w: &mut Warnings) -> Option<InputField> {
    let namespace = w.ok(input.req_str("namespace"))?;
    let name = w.ok(input.req_str("name"))?;
    let field = w.ok(input.req_str("field"))?;
    let mut transformations = Vec::new();
    let mut masking = false;
    for t in w.objects(input, "transformations") {
        let kind = w.ok(t.opt_str("type")).flatten().unwrap_or("");
        let sub = w.ok(t.opt_str("subtype")).flatten().unwrap_or("");
        let label = match (kind.is_empty(), sub.is_empty()) {
            (false, false) => format!("{kind}/{sub}"),
            (false, true) => kind.to_owned(),
            (true, false) => sub.to_owned(),
            (true, true) => continue,
        };
        transformations.push(label.to_ascii_uppercase());
        masking |= matches!(t.get("masking"), Some(Json::Bool(true)));
    }
    Some(InputField {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        field: field.to_owned(),
        transformations,
        masking,
    })
}

/// `outputStatistics`: rows and bytes written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Stats {
    /// `rowCount`.
    pub rows: Option<u64>,
    /// `size`, in bytes.
    pub bytes: Option<u64>,
}

/// The `outputStatistics` output facet.
pub(super) fn output_statistics(facets: &Facets<'_>, w: &mut Warnings) -> Stats {
    let Some(stats) = facets.get("outputStatistics", w) else {
        return Stats::default();
    };
    Stats {
        rows: w.ok(stats.opt_u64("rowCount")).flatten(),
        bytes: w.ok(stats.opt_u64("size")).flatten(),
    }
}

/// The `errorMessage` run facet's `message`.
pub(super) fn error_message(facets: &Facets<'_>, w: &mut Warnings) -> Option<String> {
    let facet = facets.get("errorMessage", w)?;
    let message = w.ok(facet.req_str("message"))?;
    Some(w.clip(&facet.field("message"), message))
}

/// The job of the `parent` run facet: `(namespace, name)`.
pub(super) fn parent_job<'a>(facets: &Facets<'a>, w: &mut Warnings) -> Option<(&'a str, &'a str)> {
    let parent = facets.get("parent", w)?;
    let job = w.ok(parent.req_obj("job"))?;
    Some((w.ok(job.req_str("namespace"))?, w.ok(job.req_str("name"))?))
}

/// The `sql` job facet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SqlFacet {
    /// `query`.
    pub query: String,
    /// `dialect` (facet 1-1-0 and later).
    pub dialect: Option<String>,
    /// Where the facet is, for warnings.
    pub path: String,
}

/// The `sql` job facet, if it has a query.
pub(super) fn sql(facets: &Facets<'_>, w: &mut Warnings) -> Option<SqlFacet> {
    let facet = facets.get("sql", w)?;
    let query = w.ok(facet.req_str("query"))?;
    let dialect = w.ok(facet.opt_str("dialect")).flatten();
    Some(SqlFacet {
        query: w.clip(&facet.field("query"), query),
        dialect: dialect.filter(|d| !d.is_empty()).map(str::to_owned),
        path: facet.path().to_owned(),
    })
}
