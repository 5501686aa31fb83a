//! Gives libringraft.so its SONAME. Only the major version is in it: the C ABI only ever grows
//! within a major version (new functions, new enum values appended), so programs linked against
//! libringraft.so.0 keep working with every later 0.x build.

fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libringraft.so.0");
    println!("cargo:rerun-if-changed=build.rs");
}
