//! VXLAN (RFC 7348): the 8-byte header after UDP port 4789, carrying a 24-bit network identifier (VNI).

use super::{get_u32, set_u32, Field, Result, WireError};

mod field {
    use super::Field;
    /// The flags byte, then 24 reserved bits.
    pub const FLAGS: usize = 0;
    /// The VNI (24 bits), then 8 reserved bits.
    pub const VNI: Field = 4..8;
    pub const PAYLOAD: usize = 8;
}

pub const HEADER_LEN: usize = field::PAYLOAD;
/// The IANA port.
pub const UDP_PORT: u16 = 4789;
/// The I flag: the VNI is valid (the only flag RFC 7348 defines; it must be set).
pub const FLAG_VNI: u8 = 0x08;

/// A view of a VXLAN header and the Ethernet frame after it.
#[derive(Debug, Clone)]
pub struct VxlanPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> VxlanPacket<T> {
    pub const fn new_unchecked(buffer: T) -> Self {
        VxlanPacket { buffer }
    }

    /// Checks the length and the I flag.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = VxlanPacket { buffer };
        if p.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if p.flags() & FLAG_VNI == 0 {
            return Err(WireError::Malformed);
        }
        Ok(p)
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[field::FLAGS]
    }

    pub fn vni(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VNI.start) >> 8
    }

    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::PAYLOAD..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Writes the header: I flag, reserved bits zero, `vni` (24 bits; higher bits are dropped).
    pub fn set_header(&mut self, vni: u32) {
        self.buffer.as_mut()[..HEADER_LEN].fill(0);
        self.set_flags(FLAG_VNI);
        self.set_vni(vni);
    }

    pub fn set_flags(&mut self, flags: u8) {
        self.buffer.as_mut()[field::FLAGS] = flags;
    }

    /// Sets the VNI (24 bits; higher bits are dropped) and the reserved byte after it to zero.
    pub fn set_vni(&mut self, vni: u32) {
        set_u32(self.buffer.as_mut(), field::VNI.start, (vni & 0x00ff_ffff) << 8);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::PAYLOAD..]
    }
}

/// A VXLAN header, owned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VxlanRepr {
    pub vni: u32,
}

impl VxlanRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &VxlanPacket<T>) -> Result<VxlanRepr> {
        Ok(VxlanRepr { vni: p.vni() })
    }

    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Errors with `Malformed` if the VNI does not fit 24 bits.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut VxlanPacket<T>) -> Result<()> {
        if self.vni > 0x00ff_ffff {
            return Err(WireError::Malformed);
        }
        p.set_header(self.vni);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{EtherType, EthernetFrame, Mac};

    /// A VXLAN packet (the UDP payload) from a Linux `vxlan` device (`id 100 dstport 4789`, kernel 6.x) as
    /// tcpdump captured it: flags 0x08 (I), VNI 100, then the inner frame 52:54:00:aa:bb:01 ->
    /// 52:54:00:aa:bb:02 carrying an ICMP echo request 192.168.100.1 -> 192.168.100.2.
    const LINUX: [u8; 106] = [
        0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x64, 0x00, 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02, 0x52, 0x54, //
        0x00, 0xaa, 0xbb, 0x01, 0x08, 0x00, 0x45, 0x00, 0x00, 0x54, 0x9e, 0xfa, 0x40, 0x00, 0x40, 0x01, //
        0x52, 0x5a, 0xc0, 0xa8, 0x64, 0x01, 0xc0, 0xa8, 0x64, 0x02, 0x08, 0x00, 0xe5, 0x89, 0x54, 0xec, //
        0x00, 0x01, 0xe4, 0x37, 0x06, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x13, 0x04, 0x00, 0x00, 0x00, //
        0x00, 0x00, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, //
        0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, //
        0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
    ];

    #[test]
    fn parses_what_linux_sends_and_emits_it_back() {
        let p = VxlanPacket::new_checked(&LINUX[..]).unwrap();
        assert_eq!((p.flags(), p.vni()), (FLAG_VNI, 100));
        assert_eq!(VxlanRepr::parse(&p).unwrap(), VxlanRepr { vni: 100 });
        let inner = EthernetFrame::new_checked(p.payload()).unwrap();
        assert_eq!((inner.dst(), inner.ethertype()), (Mac([0x52, 0x54, 0, 0xaa, 0xbb, 2]), EtherType::Ipv4));
        let mut out = [0xffu8; 8];
        VxlanRepr { vni: 100 }.emit(&mut VxlanPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, LINUX[..8]);
    }

    #[test]
    fn setters_write_every_field() {
        let mut b = [0u8; 9];
        let mut p = VxlanPacket::new_unchecked(&mut b[..]);
        p.set_flags(FLAG_VNI);
        p.set_vni(0x12_3456 | 0xff00_0000);
        p.payload_mut()[0] = 0xaa;
        assert_eq!(b, [0x08, 0, 0, 0, 0x12, 0x34, 0x56, 0, 0xaa]);
    }

    #[test]
    fn short_flagless_and_oversized() {
        assert_eq!(VxlanPacket::new_checked(&LINUX[..7]).unwrap_err(), WireError::Truncated);
        let mut flagless = LINUX;
        flagless[0] = 0;
        assert_eq!(VxlanPacket::new_checked(&flagless[..]).unwrap_err(), WireError::Malformed);
        let mut out = [0u8; 8];
        let e = VxlanRepr { vni: 1 << 24 }.emit(&mut VxlanPacket::new_unchecked(&mut out[..]));
        assert_eq!(e.unwrap_err(), WireError::Malformed);
    }
}
