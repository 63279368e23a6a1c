//! The mbufs a `net_pcap` vdev preloads: with `infinite_rx=1` the driver reads every frame of its
//! `rx_pcap` file into an mbuf when the port starts, so the packet pool is sized for that many more
//! (`Dataplane::start`, for the ports and the EAL `--vdev`s alike). Counting them means counting the
//! frames of a classic pcap file.

use std::io::Read;

/// Frames in the classic pcap file at `path`, or `None` if it cannot be read as one.
pub fn pcap_frames(path: &str) -> Option<u64> {
    let mut f = std::io::BufReader::new(std::fs::File::open(path).ok()?);
    let mut hdr = [0u8; 24];
    f.read_exact(&mut hdr).ok()?;
    let le = match hdr[0..4] {
        [0xd4, 0xc3, 0xb2, 0xa1] | [0x4d, 0x3c, 0xb2, 0xa1] => true,
        [0xa1, 0xb2, 0xc3, 0xd4] | [0xa1, 0xb2, 0x3c, 0x4d] => false,
        _ => return None,
    };
    let mut n = 0u64;
    let mut rec = [0u8; 16];
    let mut skip = Vec::new();
    while f.read_exact(&mut rec).is_ok() {
        let b = [rec[8], rec[9], rec[10], rec[11]];
        let incl = if le { u32::from_le_bytes(b) } else { u32::from_be_bytes(b) } as usize;
        skip.resize(incl, 0);
        f.read_exact(&mut skip).ok()?;
        n += 1;
    }
    Some(n)
}

/// For devargs `net_pcap…,rx_pcap=F,…,infinite_rx=1`, the number of frames the port will preload.
pub fn preloaded_frames(devargs: &str) -> u64 {
    if !devargs.starts_with("net_pcap") || !devargs.split(',').any(|kv| kv == "infinite_rx=1") {
        return 0;
    }
    devargs.split(',').filter_map(|kv| kv.strip_prefix("rx_pcap=")).map(|f| pcap_frames(f).unwrap_or(0)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_frames_of_a_little_endian_pcap() {
        let mut bytes = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 1, 0, 0, 0];
        for len in [60u32, 100, 1] {
            bytes.extend_from_slice(&[0; 8]);
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend(std::iter::repeat_n(0xabu8, len as usize));
        }
        let path = std::env::temp_dir().join(format!("df-pcap-preload-{}.pcap", std::process::id()));
        std::fs::write(&path, &bytes).unwrap();
        let p = path.to_str().unwrap();
        assert_eq!(pcap_frames(p), Some(3));
        assert_eq!(preloaded_frames(&format!("net_pcap0,rx_pcap={p},infinite_rx=1")), 3);
        assert_eq!(preloaded_frames(&format!("net_pcap0,rx_pcap={p}")), 0);
        std::fs::write(&path, b"not a pcap at all, not at all").unwrap();
        assert_eq!(pcap_frames(p), None);
        std::fs::remove_file(&path).unwrap();
    }
}
