//! The mbuf behaves as the pipeline's packet buffer exactly as the heap buffer does, so stage tests on
//! `HeapBuf` speak for the dataplane.

use dataplane::pkt::{as_pkts, Pkt};
use dpdk::{Burst, Eal, Mbuf, Mempool};
use pipelines::buf::{HeapBuf, PacketBuf};

/// One sequence of edits; returns what each step observed.
fn exercise<B: PacketBuf>(b: &mut B) -> Vec<String> {
    let mut log = vec![format!("{:?} head {} tail {}", b.data(), b.headroom(), b.tailroom())];
    b.prepend(2).unwrap().copy_from_slice(&[8, 9]);
    b.append(1).unwrap()[0] = 4;
    log.push(format!("{:?} head {} tail {}", b.data(), b.headroom(), b.tailroom()));
    log.push(format!("{} {} {} {}", b.adj(2), b.trim(1), b.adj(100), b.trim(100)));
    log.push(format!("{} {}", b.prepend(b.headroom() + 1).is_none(), b.append(b.tailroom() + 1).is_none()));
    b.data_mut()[0] = 7;
    log.push(format!("{:?} len {}", b.data(), b.len()));
    log
}

#[test]
fn mbuf_and_heap_buffer_agree() {
    let uid = std::fs::metadata("/proc/self").map(|m| std::os::unix::fs::MetadataExt::uid(&m)).unwrap_or(1);
    assert_eq!(uid, 0, "DPDK tests need root");
    let prefix = format!("dfpkt{}", std::process::id());
    let eal =
        Eal::init("pkt_buf", &["-l", "0", "--no-huge", "-m", "256", "--no-pci", "--file-prefix", &prefix]).unwrap();
    let pool = Mempool::new(&eal, "pkt_pool", 1023, 0, dpdk::DEFAULT_DATA_ROOM).unwrap();
    let mut burst: Burst = Burst::new();
    burst.push(Mbuf::from_bytes(&pool, &[1, 2, 3]).unwrap()).unwrap();
    let mbuf_log = exercise(&mut as_pkts(burst.as_mut_slice())[0]);
    let heap_log = exercise(&mut HeapBuf::new(&[1, 2, 3]));
    assert_eq!(mbuf_log, heap_log);
    let mut single = Pkt(Mbuf::from_bytes(&pool, &[0; 60]).unwrap());
    assert!(single.prepend(70_000).is_none());
    drop(single);
    drop(burst);
    assert_eq!(pool.in_use_count(), 0);
    drop(pool);
    // SAFETY: every DPDK object above was dropped.
    unsafe { eal.cleanup() };
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
}
