//! Writes a route-count scenario (`benches::routes`) into a directory, one file per consumer, all from
//! the same routes and traffic: `config.toml` (dragonflow run), `traffic.pcap` (the source vdev),
//! `l3fwd-v4.cfg` and `l3fwd-v6.cfg` (DPDK l3fwd), `ovs-flows.txt` (OVS-DPDK).
//!
//!   gen_routes ROUTES v4|v6 64|imix FRAMES DIR
//!   gen_routes ROUTES mixed imix FRAMES DIR    (`benches::mixed`: config.toml and traffic.pcap only)

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let usage = || -> ! {
        eprintln!("usage: gen_routes ROUTES v4|v6|mixed 64|imix FRAMES DIR");
        std::process::exit(2)
    };
    if a.len() != 6 {
        usage();
    }
    let n: usize = a[1].parse().unwrap_or_else(|_| usage());
    let (v6, mixed) = match a[2].as_str() {
        "v4" => (false, false),
        "v6" => (true, false),
        "mixed" => (false, true),
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
    let dir = std::path::Path::new(&a[5]);
    std::fs::create_dir_all(dir).expect("create the directory");
    let write = |name: &str, bytes: &[u8]| std::fs::write(dir.join(name), bytes).expect("write");
    use benches::{mixed as mix, routes};
    if mixed {
        if !imix {
            usage();
        }
        write("config.toml", mix::config_toml(n).as_bytes());
        write("traffic.pcap", &routes::pcap(&mix::frames(n, count)));
        return;
    }
    write("config.toml", routes::config_toml(n, v6).as_bytes());
    write("traffic.pcap", &routes::pcap(&routes::frames(n, v6, imix, count)));
    let (r4, r6) = routes::l3fwd_rules(n, v6);
    write("l3fwd-v4.cfg", r4.as_bytes());
    write("l3fwd-v6.cfg", r6.as_bytes());
    write("ovs-flows.txt", routes::ovs_flows(n, v6).as_bytes());
}
