//! `berth-desktop`: the desktop window; everything lives in the library so tests can reach it.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

fn main() {
    berth_desktop::run()
}
