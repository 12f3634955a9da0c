//! `berth-shim STATE_DIR`: the runtime's shim alone, for the runtime's own tests
//! (`tests/shim.rs`). berth-runtime cannot depend on berth-containers, whose supervisor
//! (`berth __shim --root ROOT DIR`) is what runs containers; no container-level test uses
//! this binary.

fn main() {
    let Some(dir) = std::env::args_os().nth(1) else {
        eprintln!("usage: berth-shim STATE_DIR");
        std::process::exit(2);
    };
    let code = berth_runtime::shim::shim_main(std::path::Path::new(&dir), |_, _, _| {});
    std::process::exit(code);
}
