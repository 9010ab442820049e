fn main() -> anyhow::Result<()> {
    goproxy::cli::main()
}
