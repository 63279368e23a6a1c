#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    // Right checksum for a zero pseudo-header, so the parser gets past it.
    let mut v = data.to_vec();
    if v.len() >= 8 {
        Icmpv6Packet::new_unchecked(&mut v[..]).fill_checksum(0);
    }
    if let Ok(p) = Icmpv6Packet::new_checked(&v[..]) {
        // The fast path's in-place walk (port security's ND check) never panics either.
        let _ = p.nd_target();
        for o in p.nd_options().flatten() {
            let _ = NdOptions::link_addr(o.1);
        }
        if let Ok(r) = Icmpv6Repr::parse(&p, 0) {
            let mut out = vec![0u8; r.buffer_len()];
            r.emit(&mut Icmpv6Packet::new_unchecked(&mut out[..]), 0);
            let back = Icmpv6Packet::new_checked(&out[..]).map(|p| Icmpv6Repr::parse(&p, 0).map(|b| b == r));
            assert!(matches!(back, Ok(Ok(true))) || out.len() < 8);
        }
    }
});
