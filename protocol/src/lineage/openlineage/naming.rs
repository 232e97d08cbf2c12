//! Entity ids for OpenLineage jobs, datasets and fields.
//!
//! The name is what the user will type to find the entity, so it stays as
//! OpenLineage wrote it: `<namespace>/<name>` with one slash between them
//! (`airflow/BQ.upload`, `food_delivery/public.orders`,
//! `gs://mock-bucket/copied.csv`, `file/tmp/cll_test/tbl1`). The id is its
//! lower-case form, as for every entity. Only what [`EntityId`] cannot hold is
//! changed:
//!
//! - control characters are written as Rust escapes (`\n`, `\u{1}`);
//! - a name longer than [`MAX_NAME_LEN`] keeps its first bytes and ends
//!   with `~` and 16 hex digits of its BLAKE3 hash, so it stays unique and
//!   every node derives the same id;
//! - in a field name, `.` becomes `/`: a column `T.F` belongs to the table
//!   `T` because the id's *last* dot separates them ([`EntityId::parent`]),
//!   so a dot inside `F` would attach the column to the wrong table.

use crate::lineage::model::{Attributes, EntityId, EntityKind, MAX_NAME_LEN, NewEntity};

/// The entity of a job or a dataset named `namespace` + `name` (both
/// already trimmed and non-empty).
pub(super) fn entity(kind: EntityKind, namespace: &str, name: &str) -> Option<NewEntity> {
    let display = fit(&escape(&join(namespace, name)));
    let id = EntityId::new(&kind, &display).ok()?;
    Some(NewEntity {
        id,
        name: display,
        attributes: Attributes::default(),
    })
}

/// The column `field` of `table`, or why it has none.
pub(super) fn column(table: &NewEntity, field: &str) -> Result<NewEntity, &'static str> {
    let field = escape(field.trim()).replace('.', "/");
    if field.is_empty() {
        return Err("the field has no name");
    }
    let display = format!("{}.{field}", table.name);
    if display.len() > MAX_NAME_LEN {
        return Err("the table and field names together are longer than 512 bytes");
    }
    let id = EntityId::new(&EntityKind::Column, &display).map_err(|_| "not a valid name")?;
    // Lower-casing the whole name can differ from lower-casing its parts (a
    // Greek final sigma); such a column would belong to another table.
    if id.parent().as_ref() != Some(&table.id) {
        return Err("its lower-case id does not lead back to its table");
    }
    Ok(NewEntity {
        id,
        name: display,
        attributes: Attributes::default(),
    })
}

/// `namespace/name`, never doubling a slash that one of them already has.
fn join(namespace: &str, name: &str) -> String {
    match (namespace.ends_with('/'), name.starts_with('/')) {
        (true, true) => format!("{namespace}{}", &name[1..]),
        (false, false) => format!("{namespace}/{name}"),
        _ => format!("{namespace}{name}"),
    }
}

fn escape(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Cuts a name to [`MAX_NAME_LEN`] bytes, ending it with a hash of the whole.
fn fit(name: &str) -> String {
    if name.len() <= MAX_NAME_LEN {
        return name.to_owned();
    }
    let hash = blake3::hash(name.as_bytes()).to_hex();
    let mut cut = MAX_NAME_LEN - 17;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}~{}", &name[..cut], &hash[..16])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(ns: &str, n: &str) -> String {
        entity(EntityKind::Table, ns, n).unwrap().name
    }

    #[test]
    fn names_stay_as_written() {
        assert_eq!(
            name("food_delivery", "public.Orders"),
            "food_delivery/public.Orders"
        );
        let e = entity(EntityKind::Table, "food_delivery", "public.Orders").unwrap();
        assert_eq!(e.id.as_str(), "table:food_delivery/public.orders");
        assert_eq!(
            name("gs://mock-bucket", "copied.csv"),
            "gs://mock-bucket/copied.csv"
        );
        assert_eq!(name("file", "/tmp/t"), "file/tmp/t");
        assert_eq!(name("s3://b/", "/k"), "s3://b/k");
        assert_eq!(name("hdfs://m", "/user/t1"), "hdfs://m/user/t1");
        assert_eq!(name("a\nb", "c"), "a\\nb/c");
    }

    #[test]
    fn long_names_are_cut_with_a_hash() {
        let long = "x".repeat(600);
        let a = name("ns", &long);
        assert_eq!(a.len(), MAX_NAME_LEN);
        assert!(a.starts_with("ns/xxx") && a.contains('~'));
        assert_ne!(a, name("ns", &format!("{long}y")));
        let wide = "é".repeat(400);
        assert!(name("ns", &wide).len() <= MAX_NAME_LEN);
    }

    #[test]
    fn columns_belong_to_their_table() {
        let t = entity(EntityKind::Table, "grandmas.kitchen", "apple.Pie").unwrap();
        let c = column(&t, "Crust.Top").unwrap();
        assert_eq!(c.name, "grandmas.kitchen/apple.Pie.Crust/Top");
        assert_eq!(c.id.parent(), Some(t.id.clone()));
        assert!(column(&t, " ").is_err());
        let sigma = entity(EntityKind::Table, "ns", "ΑΣ").unwrap();
        assert!(column(&sigma, "x").is_err());
        let big = entity(EntityKind::Table, "ns", &"x".repeat(509)).unwrap();
        assert!(column(&big, "col").is_err());
    }
}
