//! Finds the system libdpdk with pkg-config, generates the bindings with bindgen and compiles the C shim
//! with the full DPDK cflags (the `pkg-config` crate drops `-march=corei7`, which rte_memcpy.h needs).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn pkg_config(args: &[&str]) -> Result<String, String> {
    let out = Command::new("pkg-config")
        .args(args)
        .arg("libdpdk")
        .output()
        .map_err(|e| format!("cannot run pkg-config ({e}); install it: apt-get install pkg-config"))?;
    if !out.status.success() {
        return Err(format!("pkg-config found no libdpdk: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn fail(msg: &str) -> ! {
    eprintln!(
        "\nerror: dpdk-sys: {msg}\n\
         DPDK 22.11 or newer is needed, as on Debian 12: apt-get install libdpdk-dev dpdk libclang-dev pkg-config\n\
         (or run ci/setup.sh, which installs everything the project needs)\n"
    );
    std::process::exit(1);
}

fn main() {
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim.h");
    println!("cargo:rerun-if-changed=shim.c");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");

    let version = pkg_config(&["--modversion"]).unwrap_or_else(|e| fail(&e));
    let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
    if major < 22 {
        fail(&format!("found libdpdk {version}, which is older than 22.11"));
    }
    let cflags: Vec<String> =
        pkg_config(&["--cflags"]).unwrap_or_else(|e| fail(&e)).split_whitespace().map(str::to_owned).collect();
    let libs = pkg_config(&["--libs"]).unwrap_or_else(|e| fail(&e));
    for word in libs.split_whitespace() {
        if let Some(dir) = word.strip_prefix("-L") {
            println!("cargo:rustc-link-search=native={dir}");
        } else if let Some(lib) = word.strip_prefix("-l") {
            println!("cargo:rustc-link-lib=dylib={lib}");
        } else if word.starts_with("-Wl,") {
            println!("cargo:rustc-link-arg={word}");
        }
    }
    // rte_eth_from_ring lives in the net_ring PMD, which pkg-config's list does not name.
    println!("cargo:rustc-link-lib=dylib=rte_net_ring");

    let mut build = cc::Build::new();
    build.file("shim.c").include(".").define("ALLOW_EXPERIMENTAL_API", None).opt_level(3);
    for f in &cflags {
        build.flag(f);
    }
    build.compile("dpdk_shim");

    // bindgen gets the include paths and defines; `-include rte_config.h` is in wrapper.h itself.
    let clang_args: Vec<String> = cflags
        .iter()
        .filter(|f| f.starts_with("-I") || f.starts_with("-D"))
        .cloned()
        .chain(["-DALLOW_EXPERIMENTAL_API".to_owned(), "-I.".to_owned()])
        .collect();
    let bindings = bindgen::Builder::default()
        .header("wrapper.h")
        .clang_args(&clang_args)
        .allowlist_function("rte_.*|vs_.*")
        .allowlist_type("rte_.*")
        .allowlist_var("RTE_.*|VS_.*")
        // E0588: a packed struct that contains an aligned one; E0277: Debug on a packed union.
        .opaque_type("rte_l2tpv2_combined_msg_hdr")
        .no_debug("rte_gtp_psc_generic_hdr")
        .derive_default(true)
        .layout_tests(true)
        .generate_comments(false)
        .parse_callbacks(Box::new(bindgen::CargoCallbacks::new()))
        .generate()
        .unwrap_or_else(|e| fail(&format!("bindgen failed: {e} (is libclang-dev installed?)")));
    let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    bindings.write_to_file(out.join("bindings.rs")).expect("writing bindings.rs");
}
