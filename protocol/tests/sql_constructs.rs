//! One test per SQL construct the lineage extractor must handle, through the
//! public API. Column pairs are written `source -> target`.

use std::collections::BTreeSet;

use stemma_protocol::sql::{Catalog, Dialect, SqlLineage, SqlOptions, extract};

fn run(sql: &str, dialect: Dialect) -> SqlLineage {
    extract(sql, &SqlOptions::new(dialect)).unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

fn run_with(sql: &str, dialect: Dialect, catalog: &str) -> SqlLineage {
    let opts = SqlOptions::new(dialect).with_catalog(Catalog::from_json(catalog).unwrap());
    extract(sql, &opts).unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

fn pairs(l: &SqlLineage) -> BTreeSet<String> {
    l.column_pairs()
        .into_iter()
        .map(|(s, t)| format!("{s} -> {t}"))
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn tables(l: &SqlLineage) -> (Vec<&str>, Vec<&str>) {
    (
        l.sources.iter().map(String::as_str).collect(),
        l.targets.iter().map(String::as_str).collect(),
    )
}

#[test]
fn insert_select_with_aliases_functions_and_case() {
    let l = run(
        "INSERT INTO mart.t (a, b, c)
         SELECT o.id, upper(c.name) AS nm, CASE WHEN o.amt > 0 THEN o.amt ELSE c.credit END
         FROM sales.orders o JOIN sales.customers c ON o.cid = c.id",
        Dialect::Generic,
    );
    assert_eq!(
        tables(&l),
        (vec!["sales.orders", "sales.customers"], vec!["mart.t"])
    );
    assert_eq!(
        pairs(&l),
        set(&[
            "sales.orders.id -> mart.t.a",
            "sales.customers.name -> mart.t.b",
            "sales.orders.amt -> mart.t.c",
            "sales.customers.credit -> mart.t.c",
        ])
    );
}

#[test]
fn window_functions_feed_from_partition_and_order() {
    let l = run(
        "INSERT INTO t SELECT id, sum(v) OVER (PARTITION BY g ORDER BY ts) AS run FROM s",
        Dialect::Postgres,
    );
    assert_eq!(
        pairs(&l),
        set(&[
            "s.id -> t.id",
            "s.g -> t.run",
            "s.ts -> t.run",
            "s.v -> t.run"
        ])
    );
    // Without a column list the target's columns are guessed from the query: said so.
    assert!(
        l.unresolved
            .iter()
            .any(|n| n.contains("without a column list")),
        "{:?}",
        l.unresolved
    );
}

#[test]
fn insert_overwrite_with_partition_and_self_read() {
    let l = run(
        "INSERT OVERWRITE TABLE db.t PARTITION (dt='2024-01-01') SELECT a FROM db.t WHERE a IS NOT NULL",
        Dialect::Hive,
    );
    assert_eq!(tables(&l), (vec!["db.t"], vec!["db.t"]));
}

#[test]
fn create_table_as_and_view_with_column_list() {
    let l = run(
        "CREATE TABLE r.x AS SELECT a, b + c AS d FROM r.y;
         CREATE VIEW r.v (p, q) AS SELECT a, d FROM r.x",
        Dialect::Generic,
    );
    // r.x is created and then read: an intermediate, followed through.
    assert_eq!(tables(&l), (vec!["r.y"], vec!["r.v"]));
    assert_eq!(
        pairs(&l),
        set(&["r.y.a -> r.v.p", "r.y.b -> r.v.q", "r.y.c -> r.v.q"])
    );
    assert_eq!(l.statements.len(), 2);
    assert_eq!(l.statements[0].targets, ["r.x"]);
    assert_eq!(l.statements[1].sources, ["r.x"]);
}

#[test]
fn merge_update_and_insert_clauses() {
    let l = run(
        "MERGE INTO tgt t USING (SELECT k, max(v) AS mv FROM src GROUP BY k) s ON t.k = s.k
         WHEN MATCHED THEN UPDATE SET t.v = s.mv
         WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.mv)",
        Dialect::Snowflake,
    );
    assert_eq!(tables(&l), (vec!["src"], vec!["tgt"]));
    assert_eq!(pairs(&l), set(&["src.v -> tgt.v", "src.k -> tgt.k"]));
}

#[test]
fn update_from_and_tsql_alias_target() {
    let l = run(
        "UPDATE public.t SET name = s.name FROM public.s AS s WHERE s.id = t.id",
        Dialect::Postgres,
    );
    assert_eq!(tables(&l), (vec!["public.s"], vec!["public.t"]));
    assert_eq!(pairs(&l), set(&["public.s.name -> public.t.name"]));

    let l = run(
        "UPDATE x SET x.c = y.c FROM dbo.a AS x JOIN dbo.b AS y ON x.id = y.id",
        Dialect::MsSql,
    );
    assert_eq!(tables(&l), (vec!["dbo.b"], vec!["dbo.a"]));
    assert_eq!(pairs(&l), set(&["dbo.b.c -> dbo.a.c"]));
}

#[test]
fn delete_using_reads_and_plain_delete_has_no_lineage() {
    let l = run("DELETE FROM t USING s WHERE t.id = s.id", Dialect::Postgres);
    assert_eq!(tables(&l), (vec!["s"], vec!["t"]));
    let l = run(
        "DELETE FROM t WHERE id IN (SELECT id FROM gone)",
        Dialect::Generic,
    );
    assert_eq!(tables(&l), (vec!["gone"], vec!["t"]));
    let l = run("DELETE FROM t WHERE id = 3", Dialect::Generic);
    assert_eq!(tables(&l), (vec![], vec![]));
}

#[test]
fn copy_load_unload_and_directories_use_paths() {
    let l = run("COPY sales FROM 's3://bucket/sales/'", Dialect::Redshift);
    assert_eq!(tables(&l), (vec![], vec!["sales"]));
    assert_eq!(l.paths, ["s3://bucket/sales/"]);
    assert_eq!(l.statements[0].path_reads, ["s3://bucket/sales/"]);

    let l = run(
        "COPY (SELECT a FROM t) TO '/tmp/out.csv'",
        Dialect::Postgres,
    );
    assert_eq!(tables(&l), (vec!["t"], vec![]));
    assert_eq!(l.statements[0].path_writes, ["/tmp/out.csv"]);

    let l = run(
        "COPY INTO raw.events FROM @landing/events/",
        Dialect::Snowflake,
    );
    assert_eq!(l.targets, ["raw.events"]);
    assert_eq!(l.paths.len(), 1, "{:?}", l.paths);

    let l = run(
        "LOAD DATA INPATH '/data/x' OVERWRITE INTO TABLE db.x",
        Dialect::Hive,
    );
    assert_eq!(tables(&l), (vec![], vec!["db.x"]));
    assert_eq!(l.paths, ["/data/x"]);

    let l = run(
        "UNLOAD ('select * from venue') TO 's3://b/venue_' IAM_ROLE 'arn:aws:iam::1:role/R'",
        Dialect::Redshift,
    );
    assert_eq!(tables(&l), (vec!["venue"], vec![]));

    let l = run(
        "INSERT OVERWRITE DIRECTORY 'hdfs://p/q' SELECT * FROM t",
        Dialect::Hive,
    );
    assert_eq!(tables(&l), (vec!["t"], vec![]));
    assert_eq!(l.statements[0].path_writes, ["hdfs://p/q"]);

    let l = run("SELECT * FROM parquet.`/data/events/`", Dialect::Spark);
    assert_eq!(tables(&l), (vec![], vec![]));
    assert_eq!(l.paths, ["/data/events/"]);
}

#[test]
fn ctes_nest_and_shadow_tables() {
    let l = run(
        "WITH orders AS (SELECT * FROM raw.orders WHERE ok),
              agg AS (WITH inner_cte AS (SELECT id, amt FROM orders) SELECT id, sum(amt) AS total FROM inner_cte GROUP BY id)
         INSERT INTO mart.totals SELECT id, total FROM agg",
        Dialect::Generic,
    );
    assert_eq!(tables(&l), (vec!["raw.orders"], vec!["mart.totals"]));
    assert_eq!(
        pairs(&l),
        set(&[
            "raw.orders.id -> mart.totals.id",
            "raw.orders.amt -> mart.totals.total"
        ])
    );
}

#[test]
fn recursive_cte_is_not_a_table() {
    let l = run(
        "WITH RECURSIVE r (n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT n FROM r",
        Dialect::Postgres,
    );
    assert_eq!(tables(&l), (vec![], vec![]));
}

#[test]
fn subqueries_in_every_position() {
    let l = run(
        "INSERT INTO t
         SELECT a.x, (SELECT max(y) FROM b) AS top
         FROM (SELECT x FROM c) a
         WHERE EXISTS (SELECT 1 FROM d WHERE d.x = a.x) AND a.x IN (SELECT x FROM e)",
        Dialect::Generic,
    );
    let (mut src, tgt) = tables(&l);
    src.sort();
    assert_eq!((src, tgt), (vec!["b", "c", "d", "e"], vec!["t"]));
    assert_eq!(pairs(&l), set(&["c.x -> t.x", "b.y -> t.top"]));
}

#[test]
fn unions_merge_by_position() {
    let l = run(
        "INSERT INTO u (k) SELECT a FROM t1 UNION ALL SELECT b FROM t2 UNION SELECT c FROM t3",
        Dialect::Generic,
    );
    assert_eq!(
        pairs(&l),
        set(&["t1.a -> u.k", "t2.b -> u.k", "t3.c -> u.k"])
    );
}

#[test]
fn lateral_alias_references_use_the_catalog() {
    let catalog = r#"{"p.person": ["first", "last"]}"#;
    let sql = "INSERT INTO t.c (full_name, shout)
               SELECT first || ' ' || last AS full_name, upper(full_name) AS shout FROM p.person";
    let l = run_with(sql, Dialect::Snowflake, catalog);
    assert_eq!(
        pairs(&l),
        set(&[
            "p.person.first -> t.c.full_name",
            "p.person.last -> t.c.full_name",
            "p.person.first -> t.c.shout",
            "p.person.last -> t.c.shout",
        ])
    );
}

#[test]
fn quoted_identifiers_keep_their_case_and_names_compare_lower_case() {
    let l = run(
        r#"INSERT INTO "Mart"."Daily" SELECT "Amount" FROM Sales.ORDERS; SELECT * FROM "Mart"."Daily""#,
        Dialect::Postgres,
    );
    assert_eq!(l.statements[0].targets, ["Mart.Daily"]);
    assert_eq!(l.statements[0].sources, ["sales.orders"]);
    assert_eq!(
        pairs(&l),
        set(&["sales.orders.Amount -> Mart.Daily.Amount"])
    );
    let l = run(
        "SELECT * FROM Db.T UNION ALL SELECT * FROM db.t",
        Dialect::Generic,
    );
    assert_eq!(l.sources, ["db.t"]);
}

#[test]
fn three_part_and_backtick_names() {
    let l = run("SELECT c.x FROM cat.sch.tab AS c", Dialect::Generic);
    assert_eq!(l.sources, ["cat.sch.tab"]);
    let l = run(
        "INSERT INTO `proj.ds.out` SELECT t.a FROM `proj`.`ds`.`in` t",
        Dialect::BigQuery,
    );
    assert_eq!(tables(&l), (vec!["proj.ds.in"], vec!["proj.ds.out"]));
    assert_eq!(pairs(&l), set(&["proj.ds.in.a -> proj.ds.out.a"]));
}

#[test]
fn lateral_view_explode_feeds_from_the_array() {
    let l = run(
        "INSERT OVERWRITE TABLE out SELECT b.id, e.item FROM base b LATERAL VIEW explode(b.items) e AS item",
        Dialect::Hive,
    );
    assert_eq!(tables(&l), (vec!["base"], vec!["out"]));
    assert_eq!(
        pairs(&l),
        set(&["base.id -> out.id", "base.items -> out.item"])
    );
}

#[test]
fn unnest_and_lateral_subqueries() {
    let l = run(
        "INSERT INTO t SELECT s.id, u.v FROM s CROSS JOIN UNNEST(s.arr) AS u (v)",
        Dialect::Postgres,
    );
    assert_eq!(pairs(&l), set(&["s.id -> t.id", "s.arr -> t.v"]));
    let l = run(
        "SELECT * FROM foo, LATERAL (SELECT * FROM bar WHERE bar.id = foo.bar_id) ss",
        Dialect::Postgres,
    );
    assert_eq!(l.sources, ["foo", "bar"]);
}

#[test]
fn scripts_follow_lineage_through_temp_tables() {
    let l = run(
        "CREATE TEMPORARY TABLE tmp AS SELECT id, amt FROM raw.pay;
         INSERT INTO mart.pay SELECT id, amt * 2 AS amt2 FROM tmp;
         DROP TABLE tmp;",
        Dialect::Postgres,
    );
    assert_eq!(tables(&l), (vec!["raw.pay"], vec!["mart.pay"]));
    assert_eq!(
        pairs(&l),
        set(&["raw.pay.id -> mart.pay.id", "raw.pay.amt -> mart.pay.amt2"])
    );
}

#[test]
fn drop_and_truncate_produce_no_lineage() {
    let l = run("DROP TABLE IF EXISTS a; TRUNCATE TABLE b", Dialect::Generic);
    assert_eq!(tables(&l), (vec![], vec![]));
    assert!(l.columns.is_empty());
    // A table only created then dropped disappears; one with edges stays.
    let l = run(
        "CREATE TABLE x AS SELECT 1 AS one; DROP TABLE x",
        Dialect::Generic,
    );
    assert_eq!(tables(&l), (vec![], vec![]));
}

#[test]
fn rename_relabels_earlier_lineage() {
    let l = run(
        "INSERT INTO t1 SELECT * FROM t2; ALTER TABLE t1 RENAME TO t3",
        Dialect::Generic,
    );
    assert_eq!(tables(&l), (vec!["t2"], vec!["t3"]));
}

#[test]
fn select_star_without_catalog_is_reported_and_with_catalog_expanded() {
    let sql = "INSERT INTO t SELECT * FROM s";
    let l = run(sql, Dialect::Generic);
    assert_eq!(pairs(&l), set(&["s.* -> t.*"]));
    assert!(
        l.unresolved.iter().any(|n| n.contains('*')),
        "{:?}",
        l.unresolved
    );

    let l = run_with(
        sql,
        Dialect::Generic,
        r#"{"s": ["a", "b"], "t": ["x", "y"]}"#,
    );
    assert_eq!(pairs(&l), set(&["s.a -> t.x", "s.b -> t.y"]));
    assert!(l.unresolved.is_empty(), "{:?}", l.unresolved);
}

#[test]
fn positional_insert_with_explicit_columns() {
    let l = run("INSERT INTO t (x, y) SELECT a, b FROM s", Dialect::Generic);
    assert_eq!(pairs(&l), set(&["s.a -> t.x", "s.b -> t.y"]));
    assert!(l.unresolved.is_empty());
}

#[test]
fn ambiguous_columns_are_reported_not_guessed() {
    let l = run(
        "INSERT INTO t SELECT c FROM a JOIN b ON a.id = b.id",
        Dialect::Generic,
    );
    assert_eq!(pairs(&l), set(&["c -> t.c"]));
    assert!(
        l.unresolved.iter().any(|n| n.contains("could come from")),
        "{:?}",
        l.unresolved
    );
    let l = run_with(
        "INSERT INTO t SELECT c FROM a JOIN b ON a.id = b.id",
        Dialect::Generic,
        r#"{"a": ["id"], "b": ["id", "c"]}"#,
    );
    assert_eq!(pairs(&l), set(&["b.c -> t.c"]));
}

#[test]
fn default_schema_qualifies_bare_names_only() {
    let opts = SqlOptions::new(Dialect::Generic).with_default_schema("ods");
    let l = extract(
        "INSERT INTO target_tab SELECT user_id FROM source_tab JOIN x.y ON 1=1",
        &opts,
    )
    .unwrap();
    assert_eq!(l.targets, ["ods.target_tab"]);
    assert_eq!(l.sources, ["ods.source_tab", "x.y"]);
}

#[test]
fn wildcard_except_exclude_and_replace() {
    let catalog = r#"{"d.t": ["a", "b", "c"]}"#;
    for (dialect, kw) in [
        (Dialect::BigQuery, "EXCEPT"),
        (Dialect::Databricks, "EXCEPT"),
        (Dialect::Snowflake, "EXCLUDE"),
        (Dialect::DuckDb, "EXCLUDE"),
    ] {
        let sql = format!("CREATE TABLE o AS SELECT * {kw} (b) FROM d.t");
        let l = run_with(&sql, dialect, catalog);
        assert_eq!(
            pairs(&l),
            set(&["d.t.a -> o.a", "d.t.c -> o.c"]),
            "{dialect}"
        );
    }
    let l = run_with(
        "CREATE TABLE o AS SELECT * REPLACE (upper(c) AS c) FROM d.t",
        Dialect::BigQuery,
        catalog,
    );
    assert_eq!(
        pairs(&l),
        set(&["d.t.a -> o.a", "d.t.b -> o.b", "d.t.c -> o.c"])
    );
    let l = run(
        "INSERT INTO o SELECT * EXCEPT (b) FROM (SELECT a, b, c FROM t) sq",
        Dialect::BigQuery,
    );
    assert_eq!(pairs(&l), set(&["t.a -> o.a", "t.c -> o.c"]));
}

#[test]
fn spark_views_without_as_and_session_columns() {
    let catalog =
        r#"{"db.x": ["id", "a", "b"], "db.y": ["id", "h", "i"], "db.z": ["pk", "s", "t"]}"#;
    let l = run_with(
        "create temporary view test_x select a, b
           from (select *, row_number() over (partition by id) as rn from db.x t) t1 where rn = 1;
         create temporary view test_z select * from db.z;
         insert into table db.out
         select t1.*, t2.h, t3.*
         from test_x t1
         join (select * from db.y where i > 0) t2 on t1.id = t2.id
         left join test_z t3 on t2.id = t3.pk",
        Dialect::Spark,
        catalog,
    );
    assert_eq!(
        pairs(&l),
        set(&[
            "db.x.a -> db.out.a",
            "db.x.b -> db.out.b",
            "db.y.h -> db.out.h",
            "db.z.pk -> db.out.pk",
            "db.z.s -> db.out.s",
            "db.z.t -> db.out.t",
        ])
    );
    let (mut src, tgt) = tables(&l);
    src.sort();
    assert_eq!((src, tgt), (vec!["db.x", "db.y", "db.z"], vec!["db.out"]));
}

#[test]
fn same_alias_in_several_statements_does_not_leak() {
    let l = run(
        "insert into p.t (id) with sq as (select id from p.s1) select sq.id from sq;
         insert into p.t (id) select sq.id from (select id from p.s2) sq;",
        Dialect::Generic,
    );
    assert_eq!(pairs(&l), set(&["p.s1.id -> p.t.id", "p.s2.id -> p.t.id"]));
}

#[test]
fn procedures_are_read_for_their_statements() {
    for (dialect, sql) in [
        (
            Dialect::BigQuery,
            "CREATE PROCEDURE p()\nBEGIN\n  DECLARE n INT64 DEFAULT 0;\n  INSERT INTO t2 (c) SELECT c FROM t1;\nEND",
        ),
        (
            Dialect::MsSql,
            "CREATE PROCEDURE p @x INT AS BEGIN SET NOCOUNT ON; INSERT INTO t2 (c) SELECT c FROM t1 WHERE k = @x; END",
        ),
        (
            Dialect::Oracle,
            "CREATE PROCEDURE p AS DECLARE n NUMBER := 0; BEGIN INSERT INTO t2 (c) SELECT c FROM t1; END;\n/",
        ),
    ] {
        let l = run(sql, dialect);
        assert_eq!(tables(&l), (vec!["t1"], vec!["t2"]), "{dialect}");
        assert_eq!(pairs(&l), set(&["t1.c -> t2.c"]), "{dialect}");
    }
}

#[test]
fn hive_multi_insert_writes_every_target() {
    let l = run(
        "FROM src s
         INSERT OVERWRITE TABLE t1 SELECT s.a WHERE s.a > 0
         INSERT OVERWRITE TABLE t2 SELECT s.b AS b, count(1) AS n GROUP BY s.b",
        Dialect::Hive,
    );
    assert_eq!(tables(&l), (vec!["src"], vec!["t1", "t2"]));
    assert_eq!(pairs(&l), set(&["src.a -> t1.a", "src.b -> t2.b"]));
}

#[test]
fn parenthesized_query_after_insert_target() {
    let l = run(
        "INSERT INTO tab3 (WITH tab1 AS (SELECT * FROM tab2) SELECT * FROM tab1)",
        Dialect::Generic,
    );
    assert_eq!(tables(&l), (vec!["tab2"], vec!["tab3"]));
    assert_eq!(pairs(&l), set(&["tab2.* -> tab3.*"]));
}

#[test]
fn commands_without_lineage_do_not_fail_the_script() {
    let l = run(
        "ADD JAR /tmp/u.jar; REFRESH TABLE a; INSERT INTO b SELECT x FROM c",
        Dialect::Databricks,
    );
    assert_eq!(tables(&l), (vec!["c"], vec!["b"]));
    assert_eq!(l.statements.len(), 3);
}

#[test]
fn json_has_the_documented_shape() {
    let l = run("INSERT INTO s.b (x) SELECT x FROM s.a", Dialect::Generic);
    let v = serde_json::to_value(&l).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 6);
    for k in [
        "sources",
        "targets",
        "columns",
        "paths",
        "unresolved",
        "statements",
    ] {
        assert!(keys.contains(&k), "{k}");
    }
    assert_eq!(v["columns"][0]["target"], "s.b.x");
    assert_eq!(v["columns"][0]["sources"][0], "s.a.x");
    assert_eq!(v["statements"][0]["targets"][0], "s.b");
    assert!(v["statements"][0].get("path_reads").is_none());
}

#[test]
fn unknown_dialects_list_the_valid_ones() {
    let err = "informix".parse::<Dialect>().unwrap_err().to_string();
    for name in [
        "generic",
        "postgres",
        "mysql",
        "hive",
        "spark",
        "databricks",
        "snowflake",
        "bigquery",
        "mssql",
        "tsql",
        "redshift",
        "sqlite",
        "ansi",
        "sparksql",
    ] {
        assert!(err.contains(name), "{name} missing from {err}");
    }
}
