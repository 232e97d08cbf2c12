/// mimalloc rather than the system allocator: the lineage graph keeps hundreds
/// of thousands of small records alive, and glibc's allocator, fragmented by
/// them, made every query's few dozen small allocations several times slower
/// (BENCHMARKS.md, "Lineage queries vs PostgreSQL").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    stemma_node::cli::main()
}
