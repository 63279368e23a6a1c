//! The safe layer on a real EAL (`--no-huge`, no PCI): ownership and accounting of mbufs, bursts and
//! rings, and ports built from rings, hot-plugged from devargs, configured, started and counted; a port
//! is never changed under its queue handles. One EAL per process: every test shares it, each with pools,
//! rings and ports of its own names.

use std::sync::OnceLock;

use dpdk::{Burst, DpdkError, Eal, MainLcore, Mbuf, Mempool, Port, PortConfig, Ring, BURST_SIZE};

fn prefix() -> String {
    format!("dfsafe{}", std::process::id())
}

extern "C" fn remove_runtime_dir() {
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{}", prefix()));
}

fn eal() -> Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    *EAL.get_or_init(|| {
        let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1);
        assert_eq!(uid, 0, "DPDK tests need root (/var/run/dpdk); ci/test.sh runs them as root");
        let p = prefix();
        let e = Eal::init(
            "safe_layer",
            &["-l", "0", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", &p, "--log-level", "warning"],
        )
        .expect("EAL init");
        // SAFETY: registering a plain extern "C" function with no arguments.
        unsafe { libc::atexit(remove_runtime_dir) };
        e
    })
}

fn pool(name: &str, size: u32) -> Mempool {
    // Cache 0: the test threads are not EAL lcores anyway, and counts are then exact.
    Mempool::new(&eal(), name, size, 0, dpdk::DEFAULT_DATA_ROOM).unwrap()
}

fn frame(i: u8, len: usize) -> Vec<u8> {
    (0..len).map(|j| (j as u8).wrapping_mul(7) ^ i).collect()
}

#[test]
fn eal_init_twice_is_refused() {
    eal();
    assert!(matches!(Eal::init("again", &["--no-huge"]), Err(DpdkError::EalAlreadyInitialised)));
    assert!(Eal::current_lcore().is_none() || Eal::current_lcore() == Some(0));
    assert!(eal().tsc_hz() > 0);
}

#[test]
fn mempool_counts_what_is_out() {
    let p = pool("t_counts", 1023);
    assert_eq!((p.size(), p.in_use_count(), p.avail_count()), (1023, 0, 1023));
    let held: Vec<Mbuf> = (0..10).map(|_| p.alloc().unwrap()).collect();
    assert_eq!((p.in_use_count(), p.avail_count()), (10, 1013));
    drop(held);
    assert_eq!(p.in_use_count(), 0);
    // An exhausted pool says so instead of failing later.
    let all: Vec<Mbuf> = std::iter::from_fn(|| p.alloc()).collect();
    assert_eq!(all.len(), 1023);
    assert!(p.alloc().is_none());
    drop(all);
    assert_eq!(p.in_use_count(), 0);
}

#[test]
fn impossible_mempool_is_an_error() {
    let e = Mempool::new(&eal(), "t_huge", 100_000_000, 0, dpdk::DEFAULT_DATA_ROOM).unwrap_err();
    assert!(matches!(e, DpdkError::MempoolCreate { size: 100_000_000, .. }), "{e}");
}

#[test]
fn mbuf_grows_and_shrinks_at_both_ends() {
    let p = pool("t_edit", 63);
    let f = frame(1, 60);
    let mut m = Mbuf::from_bytes(&p, &f).unwrap();
    assert_eq!((m.len(), m.pkt_len(), m.data()), (60, 60, &f[..]));
    let (head, tail) = (m.headroom(), m.tailroom());
    assert_eq!(head, dpdk_sys::RTE_PKTMBUF_HEADROOM as usize);
    // Encapsulate: 14 bytes in front, 4 at the end.
    m.prepend(14).unwrap().copy_from_slice(&[0xee; 14]);
    m.append(4).unwrap().copy_from_slice(&[1, 2, 3, 4]);
    assert_eq!((m.len(), m.headroom(), m.tailroom()), (78, head - 14, tail - 4));
    assert_eq!(&m.data()[..14], &[0xee; 14]);
    assert_eq!(&m.data()[14..74], &f[..]);
    assert_eq!(&m.data()[74..], &[1, 2, 3, 4]);
    // Decapsulate.
    assert!(m.adj(14));
    assert!(m.trim(4));
    assert_eq!(m.data(), &f[..]);
    m.data_mut()[0] = 0x42;
    assert_eq!(m.data()[0], 0x42);
    // Beyond the buffer: refused, nothing changes.
    assert!(!m.adj(61));
    assert!(!m.trim(61));
    assert!(m.append(u16::try_from(tail + 1).unwrap()).is_none());
    assert!(m.prepend(u16::try_from(head + 1).unwrap()).is_none());
    assert_eq!(m.len(), 60);
    // into_raw hands ownership out; from_raw takes it back.
    let raw = m.into_raw();
    assert_eq!(p.in_use_count(), 1);
    // SAFETY: raw came from into_raw just above and nobody else owns it.
    let m = unsafe { Mbuf::from_raw(raw) };
    drop(m);
    assert_eq!(p.in_use_count(), 0);
    assert!(Mbuf::from_bytes(&p, &vec![0; 70_000]).is_none());
}

#[test]
fn burst_owns_its_mbufs_and_frees_them() {
    let p = pool("t_burst", 127);
    let mut b: Burst = Burst::new();
    for i in 0..BURST_SIZE {
        b.push(Mbuf::from_bytes(&p, &frame(i as u8, 64)).unwrap()).unwrap();
    }
    let extra = Mbuf::from_bytes(&p, &frame(99, 64)).unwrap();
    let extra = b.push(extra).expect_err("a full burst gives the mbuf back");
    assert_eq!(b.len(), BURST_SIZE);
    let first = b.pop_front().unwrap();
    assert_eq!(first.data(), &frame(0, 64)[..]);
    assert_eq!(b.as_slice()[0].data(), &frame(1, 64)[..]);
    // After a pop the free slot is reusable (the live range moves to the front).
    b.push(extra).unwrap();
    assert_eq!(b.as_slice().last().unwrap().data(), &frame(99, 64)[..]);
    b.as_mut_slice()[0].data_mut()[0] = 7;
    assert_eq!(b.as_slice()[0].data()[0], 7);
    assert_eq!(p.in_use_count(), 33);
    assert_eq!(b.free_all(), 32);
    assert!(b.is_empty());
    drop(first);
    assert_eq!(p.in_use_count(), 0);
    // Dropping a burst frees what is still in it.
    for _ in 0..5 {
        b.push(p.alloc().unwrap()).unwrap();
    }
    drop(b);
    assert_eq!(p.in_use_count(), 0);
}

#[test]
fn ring_moves_mbufs_and_frees_leftovers_on_drop() {
    let p = pool("t_ring", 127);
    let r = Ring::new(&eal(), "t_ring_r", 64).unwrap();
    let mut b: Burst = Burst::new();
    for i in 0..10 {
        b.push(Mbuf::from_bytes(&p, &frame(i, 80)).unwrap()).unwrap();
    }
    assert_eq!(r.enqueue(&mut b), 10);
    assert!(b.is_empty());
    assert_eq!(r.count(), 10);
    let mut out: Burst<4> = Burst::new();
    assert_eq!(r.dequeue(&mut out), 4);
    assert_eq!(out.as_slice()[3].data(), &frame(3, 80)[..]);
    drop(out);
    assert_eq!(p.in_use_count(), 6);
    drop(r);
    assert_eq!(p.in_use_count(), 0);
    assert!(matches!(Ring::new(&eal(), "t_ring_bad", 100), Err(DpdkError::RingCreate { .. })));
}

#[test]
fn ring_port_receives_and_transmits_byte_for_byte() {
    let p = pool("t_ringport", 2047);
    let (rx_ring, tx_ring) = (Ring::new(&eal(), "t_rp_rx", 256).unwrap(), Ring::new(&eal(), "t_rp_tx", 256).unwrap());
    let mut port =
        Port::from_rings(&eal(), "t0", std::slice::from_ref(&rx_ring), std::slice::from_ref(&tx_ring)).unwrap();
    assert_eq!(port.name(), "net_ring_t0");
    // One ring each way: one queue each way at most.
    let too_many = PortConfig { rx_queues: 2, ..PortConfig::default() };
    assert!(matches!(port.configure(&too_many, &p), Err(DpdkError::TooManyQueues { asked: 2, max: 1, .. })));
    port.configure(&PortConfig { rx_desc: 128, tx_desc: 128, ..PortConfig::default() }, &p).unwrap();
    port.start().unwrap();
    let frames: Vec<Vec<u8>> = (0..20).map(|i| frame(i, 60 + i as usize * 50)).collect();
    let mut b: Burst = Burst::new();
    for f in &frames {
        b.push(Mbuf::from_bytes(&p, f).unwrap()).unwrap();
    }
    assert_eq!(rx_ring.enqueue(&mut b), 20);

    let (mut rxq, mut txq) = (port.rx_queue(0).unwrap(), port.tx_queue(0).unwrap());
    assert!(matches!(port.rx_queue(0), Err(DpdkError::QueueTaken { kind: "rx", queue: 0, .. })));
    assert!(matches!(port.tx_queue(0), Err(DpdkError::QueueTaken { kind: "tx", queue: 0, .. })));
    assert!(matches!(port.rx_queue(3), Err(DpdkError::QueueTaken { kind: "rx", queue: 3, .. })));
    assert_eq!(rxq.rx_burst(&mut b), 20);
    let got: Vec<Vec<u8>> = b.as_slice().iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(got, frames);
    assert_eq!(txq.tx_burst(&mut b), 20);
    assert!(b.is_empty());
    let mut out: Burst = Burst::new();
    assert_eq!(tx_ring.dequeue(&mut out), 20);
    let sent: Vec<Vec<u8>> = out.as_slice().iter().map(|m| m.data().to_vec()).collect();
    assert_eq!(sent, frames);
    drop(out);
    let s = port.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets), (20, 20));
    drop((rxq, txq));
    port.stop().unwrap();
    drop(port);
    assert_eq!(p.in_use_count(), 0);
}

#[test]
fn hot_plugged_null_port_counts_and_reports() {
    let p = pool("t_null", 4095);
    let mut port = Port::open(&eal(), "net_null_t1,size=128").unwrap();
    // A port has one owner: opening it again (by name, or among all ports) gives no second one, which
    // could reconfigure or stop it under the first one's queues.
    let again = Port::open(&eal(), "net_null_t1");
    assert!(matches!(again, Err(DpdkError::PortInUse { port: id, .. }) if id == port.id()), "{again:?}");
    assert_eq!(Port::all(&eal()).iter().filter(|p| p.id() == port.id()).count(), 0);
    let info = port.info().unwrap();
    assert_eq!(info.driver, "net_null");
    assert!(info.max_rx_queues >= 2 && info.max_tx_queues >= 2);
    port.configure(&PortConfig { rx_queues: 2, tx_queues: 2, ..PortConfig::default() }, &p).unwrap();
    port.start().unwrap();
    assert!(port.link().unwrap().up);
    assert_ne!(port.mac().unwrap(), dpdk::MacAddr::default());
    let (mut rxq, mut txq) = (port.rx_queue(1).unwrap(), port.tx_queue(1).unwrap());
    let mut b: Burst = Burst::new();
    assert_eq!(rxq.rx_burst(&mut b), BURST_SIZE);
    assert!(b.as_slice().iter().all(|m| m.len() == 128 && m.port() == port.id()));
    assert_eq!(txq.tx_burst(&mut b), BURST_SIZE);
    let s = port.stats().unwrap();
    assert_eq!((s.ipackets, s.opackets), (32, 32));
    port.reset_stats().unwrap();
    assert_eq!(port.stats().unwrap().ipackets, 0);
    drop((rxq, txq));
    port.stop().unwrap();
    drop(port);
    assert_eq!(p.in_use_count(), 0);
}

/// The queue-taken flags come back only with a new configuration, and a port is configured, started and
/// stopped only while no handle of its queues is alive: never two handles on one queue (two threads on
/// one single-consumer DPDK queue), never a stop or start under a running burst.
#[test]
fn a_port_is_not_changed_under_its_queue_handles() {
    let p = pool("t_busy", 4095);
    let cfg = PortConfig { rx_queues: 2, tx_queues: 2, rx_desc: 256, tx_desc: 256, ..PortConfig::default() };
    let mut port = Port::open(&eal(), "net_null_t3,size=64").unwrap();
    assert!(matches!(port.rx_queue(0), Err(DpdkError::QueueTaken { .. })), "no queue before configure");
    port.configure(&cfg, &p).unwrap();
    port.start().unwrap();
    let mut rxq = port.rx_queue(0).unwrap();
    let txq = port.tx_queue(1).unwrap();
    let in_use = |r: dpdk::Result<()>, what: &str| {
        assert!(matches!(r, Err(DpdkError::QueuesInUse { call, .. }) if call == what), "{what}: {r:?}");
    };
    // What used to reset the taken flags under a live handle is refused, so the queue stays taken.
    in_use(port.configure(&cfg, &p), "configure");
    assert!(matches!(port.rx_queue(0), Err(DpdkError::QueueTaken { kind: "rx", queue: 0, .. })));
    in_use(port.stop(), "stop");
    in_use(port.start(), "start");
    // The refusals changed nothing: the port still runs and the handle still receives.
    let mut b: Burst = Burst::new();
    assert_eq!(rxq.rx_burst(&mut b), BURST_SIZE);
    b.free_all();
    drop(rxq);
    in_use(port.stop(), "stop");
    drop(txq);
    // The last handle gone, the port is changed, and a new configuration gives its queues again.
    port.stop().unwrap();
    port.configure(&cfg, &p).unwrap();
    port.start().unwrap();
    let again = port.rx_queue(0).unwrap();
    assert!(matches!(port.rx_queue(0), Err(DpdkError::QueueTaken { .. })));
    drop(again);
    drop(port);
    assert_eq!(p.in_use_count(), 0);
}

/// Launching is the main lcore's: no other thread gets the token.
#[test]
fn only_the_main_lcore_launches() {
    let e = eal();
    let elsewhere = std::thread::spawn(move || MainLcore::here(&e).map(|_| ())).join().unwrap();
    assert!(matches!(elsewhere, Err(DpdkError::NotMainLcore { main: 0, current: None })), "{elsewhere:?}");
}

#[test]
fn bad_devargs_are_errors() {
    assert!(matches!(Port::open(&eal(), ",x=1"), Err(DpdkError::Devargs(_))));
    assert!(matches!(Port::open(&eal(), "net_nosuchdriver0"), Err(DpdkError::Probe { .. })));
    assert!(matches!(Port::open(&eal(), "net_null_t2\0"), Err(DpdkError::Devargs(_))));
}
