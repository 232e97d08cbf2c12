//! The data-lineage graph: an Automerge document, an index kept current from its
//! changes, and the queries users ask of it.
