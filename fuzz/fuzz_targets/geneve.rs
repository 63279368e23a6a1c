#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(p) = GenevePacket::new_checked(data) {
        let _ = (p.version(), p.options_len(), p.header_len(), p.oam(), p.critical(), p.protocol(), p.vni());
        let _ = (p.payload(), p.options().collect::<Vec<_>>());
        if let Ok(r) = GeneveRepr::parse(&p) {
            let mut out = vec![0u8; r.buffer_len(0)];
            r.emit(&mut GenevePacket::new_unchecked(&mut out[..])).expect("a parsed header re-emits");
            assert_eq!(GeneveRepr::parse(&GenevePacket::new_checked(&out[..]).unwrap()).unwrap(), r);
        }
    }
});
