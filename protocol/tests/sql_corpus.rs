//! Runs the SQL lineage extractor over sqllineage's own test corpus and
//! prints how well it does: table-level exact match (source and target sets
//! both equal) and column-level precision / recall / F1, overall and by
//! category (test file, dialect).
//!
//! `cargo test -p stemma-protocol --test sql_corpus -- --nocapture`
//! (`SQL_CORPUS_VERBOSE=1` also lists every miss).
//!
//! The floors asserted at the end sit a little below the measured figures,
//! to catch regressions; they are not a target. Reference: OpenLineage's
//! extractor scores 81 % table-level and column P 0.56 / R 0.42 here.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use stemma_protocol::sql::{Catalog, Dialect, SqlLineage, SqlOptions, extract};

const CORPUS: &str = include_str!("corpora/sqllineage-tests.jsonl");
const CATALOGS: &str = include_str!("corpora/sqllineage-catalogs.json");

const TABLE_FLOOR: f64 = 0.98;
const COLUMN_F1_FLOOR: f64 = 0.97;

#[derive(Default, Clone, Copy)]
struct Tally {
    table_cases: u32,
    table_exact: u32,
    column_cases: u32,
    column_exact: u32,
    tp: u32,
    fp: u32,
    fn_: u32,
}

impl Tally {
    fn add(&mut self, o: &Tally) {
        self.table_cases += o.table_cases;
        self.table_exact += o.table_exact;
        self.column_cases += o.column_cases;
        self.column_exact += o.column_exact;
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }

    fn table_accuracy(&self) -> f64 {
        ratio(self.table_exact, self.table_cases)
    }

    fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }

    fn line(&self) -> String {
        let table = if self.table_cases > 0 {
            format!(
                "{:>4}/{:<4} {:>6.1}%",
                self.table_exact,
                self.table_cases,
                100.0 * self.table_accuracy()
            )
        } else {
            format!("{:>17}", "-")
        };
        let column = if self.column_cases > 0 {
            format!(
                "{:>4}/{:<4} P {:.3} R {:.3} F1 {:.3}",
                self.column_exact,
                self.column_cases,
                self.precision(),
                self.recall(),
                self.f1()
            )
        } else {
            "-".to_string()
        };
        format!("{table} | {column}")
    }
}

fn ratio(a: u32, b: u32) -> f64 {
    if b == 0 {
        1.0
    } else {
        f64::from(a) / f64::from(b)
    }
}

/// sqllineage writes unqualified tables as `<default>.name`.
fn norm(name: &str) -> String {
    name.strip_prefix("<default>.")
        .unwrap_or(name)
        .to_lowercase()
}

/// sqllineage lists paths among tables; Stemma reports them apart.
fn is_path(name: &str) -> bool {
    name.contains('/') || name.starts_with('@')
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|s| s.as_str().map(norm)).collect())
        .unwrap_or_default()
}

fn lower_set<'a>(it: impl IntoIterator<Item = &'a String>) -> BTreeSet<String> {
    it.into_iter().map(|s| s.to_lowercase()).collect()
}

fn catalog_for(case: &Value, catalogs: &Value) -> Option<Catalog> {
    if case["with_metadata"].as_bool() != Some(true) {
        return None;
    }
    let test = case["test"].as_str().unwrap_or("");
    let func = test
        .split("::")
        .nth(1)
        .unwrap_or("")
        .split('[')
        .next()
        .unwrap_or("");
    let doc = catalogs["by_test"]
        .get(func)
        .unwrap_or(&catalogs["default"]);
    Some(serde_json::from_value(doc.clone()).expect("catalog"))
}

fn table_case(case: &Value, got: &Result<SqlLineage, String>) -> (bool, String) {
    let (mut es, mut et) = (BTreeSet::new(), BTreeSet::new());
    let (mut eps, mut ept) = (BTreeSet::new(), BTreeSet::new());
    for s in strings(&case["sources"]) {
        if is_path(&s) {
            eps.insert(s)
        } else {
            es.insert(s)
        };
    }
    for t in strings(&case["targets"]) {
        if is_path(&t) {
            ept.insert(t)
        } else {
            et.insert(t)
        };
    }
    let Ok(l) = got else {
        return (false, format!("error {}", got.as_ref().err().unwrap()));
    };
    let gs = lower_set(&l.sources);
    let gt = lower_set(&l.targets);
    let gps = lower_set(l.statements.iter().flat_map(|s| &s.path_reads));
    let gpt = lower_set(l.statements.iter().flat_map(|s| &s.path_writes));
    let ok = es == gs && et == gt && eps == gps && ept == gpt;
    let detail = format!(
        "expected S={es:?} T={et:?} paths {eps:?}->{ept:?}\n      got S={gs:?} T={gt:?} paths {gps:?}->{gpt:?}"
    );
    (ok, detail)
}

fn column_case(case: &Value, got: &Result<SqlLineage, String>) -> (Tally, String) {
    let mut expected = BTreeSet::new();
    for pair in case["column_lineage"].as_array().into_iter().flatten() {
        let side = |v: &Value| -> String {
            let table = v[0].as_str().map(norm);
            let col = v[1].as_str().unwrap_or("").to_lowercase();
            match table {
                Some(t) => format!("{t}.{col}"),
                None => col,
            }
        };
        expected.insert((side(&pair[0]), side(&pair[1])));
    }
    let actual: BTreeSet<(String, String)> = match got {
        Ok(l) => l
            .column_pairs()
            .into_iter()
            .map(|(s, t)| (s.to_lowercase(), t.to_lowercase()))
            .collect(),
        Err(_) => BTreeSet::new(),
    };
    let tp = expected.intersection(&actual).count() as u32;
    let t = Tally {
        column_cases: 1,
        column_exact: u32::from(expected == actual),
        tp,
        fp: actual.len() as u32 - tp,
        fn_: expected.len() as u32 - tp,
        ..Tally::default()
    };
    let missing: Vec<_> = expected.difference(&actual).collect();
    let extra: Vec<_> = actual.difference(&expected).collect();
    let err = got
        .as_ref()
        .err()
        .map(|e| format!(" error {e}"))
        .unwrap_or_default();
    (
        t,
        format!("missing {missing:?}\n      extra {extra:?}{err}"),
    )
}

#[test]
fn sqllineage_corpus() {
    let verbose = std::env::var_os("SQL_CORPUS_VERBOSE").is_some();
    let catalogs: Value = serde_json::from_str(CATALOGS).expect("catalogs");
    let mut total = Tally::default();
    let mut by_file: BTreeMap<String, Tally> = BTreeMap::new();
    let mut by_dialect: BTreeMap<String, Tally> = BTreeMap::new();
    let mut errors = 0;
    let mut cases = 0;
    for (i, line) in CORPUS.lines().enumerate() {
        let case: Value = serde_json::from_str(line).expect("corpus line");
        cases += 1;
        let dialect_name = case["dialect"].as_str().unwrap_or("generic");
        let dialect: Dialect = dialect_name.parse().expect("corpus dialect");
        let mut opts = SqlOptions::new(dialect);
        opts.catalog = catalog_for(&case, &catalogs);
        let sql = case["sql"].as_str().unwrap_or("");
        let got = extract(sql, &opts).map_err(|e| e.to_string());
        if got.is_err() {
            errors += 1;
        }
        let (tally, ok, detail) = match case["kind"].as_str() {
            Some("table") => {
                let (ok, detail) = table_case(&case, &got);
                let t = Tally {
                    table_cases: 1,
                    table_exact: u32::from(ok),
                    ..Tally::default()
                };
                (t, ok, detail)
            }
            _ => {
                let (t, detail) = column_case(&case, &got);
                (t, t.column_exact == 1, detail)
            }
        };
        if verbose && !ok {
            println!(
                "MISS #{i} [{dialect_name}] {}\n  {}\n      {detail}",
                case["test"].as_str().unwrap_or(""),
                sql.trim().replace('\n', "\n  ")
            );
        }
        total.add(&tally);
        let file = case["test"]
            .as_str()
            .unwrap_or("")
            .split("::")
            .next()
            .unwrap_or("")
            .to_string();
        by_file.entry(file).or_default().add(&tally);
        by_dialect
            .entry(dialect_name.to_string())
            .or_default()
            .add(&tally);
    }

    println!("\nsqllineage corpus: {cases} cases, {errors} not parsed");
    println!(
        "TABLE-LEVEL exact match: {}/{} = {:.1}%",
        total.table_exact,
        total.table_cases,
        100.0 * total.table_accuracy()
    );
    println!(
        "COLUMN-LEVEL precision {:.3} recall {:.3} F1 {:.3} (tp {} fp {} fn {}; {}/{} cases exact)",
        total.precision(),
        total.recall(),
        total.f1(),
        total.tp,
        total.fp,
        total.fn_,
        total.column_exact,
        total.column_cases
    );
    println!(
        "\nby test file                                                          table exact | column exact, P/R/F1"
    );
    for (file, t) in &by_file {
        println!("  {file:<68} {}", t.line());
    }
    println!("\nby dialect");
    for (d, t) in &by_dialect {
        println!("  {d:<12} {}", t.line());
    }
    println!();

    assert!(
        total.table_accuracy() >= TABLE_FLOOR,
        "table-level accuracy {:.3} fell below {TABLE_FLOOR}",
        total.table_accuracy()
    );
    assert!(
        total.f1() >= COLUMN_F1_FLOOR,
        "column F1 {:.3} fell below {COLUMN_F1_FLOOR}",
        total.f1()
    );
}
