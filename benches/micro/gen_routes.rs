//! Writes a route-count scenario (`benches::routes`): the switch's configuration and the pcap to replay.
//!
//!   gen_routes ROUTES v4|v6 64|imix FRAMES CONFIG.toml OUT.pcap

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: gen_routes ROUTES v4|v6 64|imix FRAMES CONFIG.toml OUT.pcap");
        std::process::exit(2)
    };
    if a.len() != 7 {
        usage();
    }
    let n: usize = a[1].parse().unwrap_or_else(|_| usage());
    let v6 = match a[2].as_str() {
        "v4" => false,
        "v6" => true,
        _ => usage(),
    };
    let imix = match a[3].as_str() {
        "64" => false,
        "imix" => true,
        _ => usage(),
    };
    let count: usize = a[4].parse().unwrap_or_else(|_| usage());
    if n == 0 || count == 0 {
        usage();
    }
    let frames = benches::routes::frames(n, v6, imix, count);
    std::fs::write(&a[5], benches::routes::config_toml(n, v6)).expect("write the configuration");
    std::fs::write(&a[6], benches::routes::pcap(&frames)).expect("write the pcap");
}
