#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = VxlanPacket::new_checked(data) {
        let _ = (p.flags(), p.vni(), p.payload());
        let r = VxlanRepr::parse(&p).unwrap();
        let mut out = vec![0u8; r.buffer_len()];
        r.emit(&mut VxlanPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(VxlanRepr::parse(&VxlanPacket::new_checked(&out[..]).unwrap()).unwrap(), r);
    }
});
