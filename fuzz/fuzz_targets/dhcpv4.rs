#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    // Most inputs lack the magic cookie: put it in so the options get walked.
    let mut v = data.to_vec();
    v.resize(v.len().max(240), 0);
    v[236..240].copy_from_slice(&dhcpv4::MAGIC_COOKIE);
    for b in [data, &v[..]] {
        if let Ok(p) = DhcpPacket::new_checked(b) {
            let _ = (p.op(), p.htype(), p.hlen(), p.hops(), p.xid(), p.secs(), p.flags(), p.broadcast());
            let _ = (p.ciaddr(), p.yiaddr(), p.siaddr(), p.giaddr(), p.client_mac());
            let _ = p.options().collect::<Vec<_>>();
            if let Ok(r) = DhcpRepr::parse(&p) {
                let mut out = vec![0u8; r.buffer_len()];
                // Merged repeats of an option can exceed 255 bytes: then emit refuses, it must not panic.
                if r.emit(&mut DhcpPacket::new_unchecked(&mut out[..])).is_ok() {
                    assert_eq!(DhcpRepr::parse(&DhcpPacket::new_checked(&out[..]).unwrap()).unwrap(), r);
                }
            }
        }
    }
});
