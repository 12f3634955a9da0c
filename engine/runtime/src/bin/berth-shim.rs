//! A standalone shim binary (used by the tests; the berth binary has the
//! same thing as its hidden `__shim` subcommand): `berth-shim STATE_DIR`.

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-shim STATE_DIR");
        std::process::exit(2);
    };
    let code = berth_runtime::shim::shim_main(std::path::Path::new(&dir), |_, _, _| {});
    std::process::exit(code);
}
