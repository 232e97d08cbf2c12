//! Lineage extracted from SQL: the tables a statement reads and writes, and
//! which source columns each target column comes from.
