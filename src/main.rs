/// glibc's malloc showed up as a tenth of the proxy path's CPU in `perf`
/// (many small, short-lived allocations across two threads); mimalloc's
/// per-thread free lists serve that pattern better (benches/RESULTS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis::cli::main()
}
