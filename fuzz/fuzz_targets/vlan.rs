#![no_main]
use libfuzzer_sys::fuzz_target;
use pipelines::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = VlanTag::new_checked(data) {
        let r = VlanRepr::parse(&t).unwrap();
        let mut out = [0u8; 4];
        r.emit(&mut VlanTag::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &data[..4]);
    }
});
