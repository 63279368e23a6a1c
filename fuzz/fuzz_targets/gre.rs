#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = GrePacket::new_checked(data) {
        let _ = (p.flags(), p.version(), p.protocol(), p.header_len(), p.key(), p.seq(), p.checksum());
        let _ = (p.payload(), p.verify_checksum());
        let r = GreRepr::parse(&p).unwrap();
        let payload = p.payload();
        let mut out = vec![0u8; r.buffer_len(payload.len())];
        let at = out.len() - payload.len();
        out[at..].copy_from_slice(payload);
        r.emit(&mut GrePacket::new_unchecked(&mut out[..]));
        let q = GrePacket::new_checked(&out[..]).unwrap();
        assert_eq!(GreRepr::parse(&q).unwrap(), r);
        assert_eq!(q.payload(), payload);
        assert!(q.verify_checksum());
    }
});
