fn main() -> std::process::ExitCode {
    stemma_node::cli::main()
}
