//! Tauri's build step. The window embeds `ui/dist`; when the UI has not been built yet
//! (a plain `cargo build --workspace`), a one-page placeholder says how to build it, so
//! the workspace still compiles.

fn main() {
    let dist = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/dist");
    if !dist.join("index.html").exists() {
        let _ = std::fs::create_dir_all(&dist);
        let _ = std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Berth</title><p>The Berth UI is not built: run \
             <code>npm --prefix ui ci &amp;&amp; npm --prefix ui run build</code>, then rebuild.</p>",
        );
    }
    println!("cargo:rerun-if-changed=../ui/dist");
    tauri_build::build()
}
