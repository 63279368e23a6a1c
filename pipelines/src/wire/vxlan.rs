//! VXLAN (RFC 7348): the 8-byte header after UDP port 4789, carrying a 24-bit network identifier (VNI).

use super::{get_u32, set_u32, Result, WireError};

mod field {
    pub const FLAGS: usize = 0;
    pub const VNI: usize = 4;
}

pub const HEADER_LEN: usize = 8;
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
        get_u32(self.buffer.as_ref(), field::VNI) >> 8
    }

    /// The encapsulated Ethernet frame.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> VxlanPacket<T> {
    /// Writes the header: I flag, reserved bits zero, `vni` (24 bits; higher bits are dropped).
    pub fn set_header(&mut self, vni: u32) {
        let b = self.buffer.as_mut();
        b[..HEADER_LEN].fill(0);
        b[field::FLAGS] = FLAG_VNI;
        set_u32(b, field::VNI, (vni & 0x00ff_ffff) << 8);
    }

    pub fn payload_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[HEADER_LEN..]
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

    #[test]
    fn parses_a_header_as_linux_sends_it() {
        // VNI 100, as in the harness's vxlan-1kflows pcap.
        let b = [0x08, 0, 0, 0, 0, 0, 0x64, 0, 0xaa];
        let p = VxlanPacket::new_checked(&b[..]).unwrap();
        assert_eq!((p.vni(), p.payload()), (100, &[0xaa][..]));
        let mut out = [0u8; 8];
        VxlanRepr { vni: 100 }.emit(&mut VxlanPacket::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, b[..8]);
    }

    #[test]
    fn short_flagless_and_oversized() {
        assert_eq!(VxlanPacket::new_checked(&[0x08u8; 7][..]).unwrap_err(), WireError::Truncated);
        assert_eq!(VxlanPacket::new_checked(&[0u8; 8][..]).unwrap_err(), WireError::Malformed);
        let mut out = [0u8; 8];
        let e = VxlanRepr { vni: 1 << 24 }.emit(&mut VxlanPacket::new_unchecked(&mut out[..]));
        assert_eq!(e.unwrap_err(), WireError::Malformed);
    }
}
