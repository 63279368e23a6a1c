//! Ports plugged and unplugged while the workers run (a VM's TAP coming and going): two TAP ports are
//! plugged into a running pipeline with no port, frames cross between them, one is unplugged (its kernel
//! interface goes away) and plugged again into the same slot, and every mbuf comes back at shutdown.
//! Needs root (TAP devices).

use std::process::Command;
use std::time::{Duration, Instant};

use dataplane::{Dataplane, DataplaneOptions, Mode};
use pipelines::tables::{PortEntry, Tables, TablesBuilder};
use pipelines::wire::Mac;

const A: [u8; 6] = [0x02, 0, 0, 0, 0xa, 1];
const B: [u8; 6] = [0x02, 0, 0, 0, 0xb, 1];

/// An AF_PACKET socket on one interface.
struct Raw(i32);

impl Raw {
    fn open(iface: &str) -> Raw {
        let name = std::ffi::CString::new(iface).unwrap();
        // SAFETY: plain libc calls with valid arguments; the sockaddr_ll is zero-initialised then filled.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32);
            assert!(fd >= 0, "socket: {}", std::io::Error::last_os_error());
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
            sll.sll_ifindex = libc::if_nametoindex(name.as_ptr()) as i32;
            assert!(sll.sll_ifindex > 0, "no interface {iface}");
            let r = libc::bind(fd, (&sll as *const libc::sockaddr_ll).cast(), std::mem::size_of_val(&sll) as u32);
            assert_eq!(r, 0, "bind: {}", std::io::Error::last_os_error());
            let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
            libc::setsockopt(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, (&tv as *const libc::timeval).cast(), 16);
            Raw(fd)
        }
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: fd is our bound socket, frame a valid buffer.
        unsafe { libc::send(self.0, frame.as_ptr().cast(), frame.len(), 0) };
    }

    /// True once a frame carrying `marker` arrives within `limit`.
    fn sees(&self, marker: &[u8], limit: Duration) -> bool {
        let end = Instant::now() + limit;
        let mut buf = [0u8; 2048];
        while Instant::now() < end {
            // SAFETY: buf is writable for its length.
            let n = unsafe { libc::recv(self.0, buf.as_mut_ptr().cast(), buf.len(), 0) };
            if n > 0 && buf[..n as usize].windows(marker.len()).any(|w| w == marker) {
                return true;
            }
        }
        false
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        // SAFETY: our own fd.
        unsafe { libc::close(self.0) };
    }
}

fn frame(dst: [u8; 6], src: [u8; 6], marker: &[u8]) -> Vec<u8> {
    let mut f = [&dst[..], &src[..], &[0x88, 0xb5]].concat();
    f.extend_from_slice(marker);
    f.resize(64, 0);
    f
}

fn up(iface: &str) {
    let ok = Command::new("ip").args(["link", "set", iface, "up"]).status().map(|s| s.success()).unwrap_or(false);
    assert!(ok, "ip link set {iface} up");
}

fn exists(iface: &str) -> bool {
    std::path::Path::new("/sys/class/net").join(iface).exists()
}

fn tables(ports: &[(u16, [u8; 6])]) -> Tables {
    let mut b = TablesBuilder::new();
    for (i, &(index, mac)) in ports.iter().enumerate() {
        let entry = PortEntry {
            lport: i as u32 + 1,
            network: 1,
            mac: Mac(mac),
            up: true,
            security: false,
            allowed: Vec::new(),
            sg: None,
        };
        b.local_port(index, entry);
    }
    b.build()
}

/// Sends frames A→B into `from` until one shows on `to`.
fn crosses(from: &Raw, to: &Raw, marker: &[u8]) -> bool {
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        from.send(&frame(B, A, marker));
        if to.sees(marker, Duration::from_millis(200)) {
            return true;
        }
    }
    false
}

#[test]
fn ports_plug_and_unplug_under_running_workers() {
    // SAFETY: geteuid has no precondition.
    assert_eq!(unsafe { libc::geteuid() }, 0, "this test needs root (TAP devices)");
    let prefix = format!("df-hotplug-{}", std::process::id());
    let eal =
        dpdk::Eal::init("hotplug", &["-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", &prefix])
            .expect("EAL");
    let opts =
        DataplaneOptions { mode: Mode::Pipeline, hotplug_ports: 4, latency: false, ..DataplaneOptions::default() };
    let main = dpdk::MainLcore::here(&eal).expect("the EAL's own thread is the main lcore");
    let mut dp = Dataplane::start(&main, &opts, |names| {
        assert!(names.is_empty());
        Ok(Tables::default())
    })
    .expect("a pipeline with no port starts");

    let a = dp.plug("net_tap_dfhpa,iface=dfhpa").expect("plug a");
    let b = dp.plug("net_tap_dfhpb,iface=dfhpb").expect("plug b");
    assert_eq!((a, b), (0, 1), "the lowest free slots");
    up("dfhpa");
    up("dfhpb");
    dp.publish(tables(&[(a, A), (b, B)]));
    let (ra, rb) = (Raw::open("dfhpa"), Raw::open("dfhpb"));
    assert!(crosses(&ra, &rb, b"first-crossing"), "a frame from dfhpa reached dfhpb");

    // Unplug a: tables without it first, as the node does; its kernel interface goes with it.
    dp.publish(tables(&[(b, B)]));
    drop(ra);
    dp.unplug(a).expect("unplug a");
    assert!(!exists("dfhpa"), "the TAP interface is gone");
    assert!(dp.ports().all(|(i, _)| i != a));
    assert!(dp.unplug(a).is_err(), "unplugging a free slot is an error, not a crash");

    // Plugged again under the same name: the same slot, and traffic again.
    let a2 = dp.plug("net_tap_dfhpa,iface=dfhpa").expect("plug a again");
    assert_eq!(a2, a);
    up("dfhpa");
    dp.publish(tables(&[(a2, A), (b, B)]));
    let ra = Raw::open("dfhpa");
    assert!(crosses(&ra, &rb, b"second-crossing"), "traffic after the re-plug");
    let report = dp.report();
    let pa = report.ports.iter().find(|p| p.index == a2).expect("a in the report");
    assert!(pa.rx > 0, "the re-plugged port's counters count: {pa:?}");
    drop((ra, rb));

    let report = dp.shutdown();
    assert_eq!(report.mempool.in_use, 0, "every mbuf back in the pool");
    assert!(!exists("dfhpa") && !exists("dfhpb"), "no TAP left behind");
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
