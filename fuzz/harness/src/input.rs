//! The byte format of the `handle_input` target: a cursor that reads small numbers and byte
//! runs from the fuzz input, and its inverse, which the corpus generator uses to write inputs
//! that carry real datagrams.
//!
//! Every read succeeds: past the end of the input, numbers read as zero and byte runs as
//! empty, so every input means something and the fuzzer never wastes an execution on a
//! parse error.

/// Reads the fuzz input front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `data`.
    pub fn new(data: &'a [u8]) -> Self {
        Self { data }
    }

    /// Whether every byte was read.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// One byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&byte, rest)) => {
                self.data = rest;
                byte
            }
            None => 0,
        }
    }

    /// Two bytes, little-endian.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// Four bytes, little-endian.
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A flag: the low bit of one byte.
    pub fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }

    /// One byte, reduced to `0..n` (`n` > 0).
    pub fn below(&mut self, n: u8) -> u8 {
        self.u8() % n
    }

    /// A run of bytes whose length (two bytes, little-endian) comes first; shorter when the
    /// input ends.
    pub fn bytes(&mut self) -> &'a [u8] {
        let len = usize::from(self.u16()).min(self.data.len());
        let (run, rest) = self.data.split_at(len);
        self.data = rest;
        run
    }
}

/// Writes what [`Reader`] reads.
#[derive(Debug, Clone, Default)]
pub struct Writer {
    data: Vec<u8>,
}

impl Writer {
    /// An empty input.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one byte.
    pub fn u8(&mut self, byte: u8) -> &mut Self {
        self.data.push(byte);
        self
    }

    /// Appends two bytes, little-endian.
    pub fn u16(&mut self, value: u16) -> &mut Self {
        self.data.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a run of bytes with its length first (at most `u16::MAX` bytes are kept).
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        let bytes = &bytes[..bytes.len().min(usize::from(u16::MAX))];
        self.u16(bytes.len() as u16);
        self.data.extend_from_slice(bytes);
        self
    }

    /// The input written so far.
    pub fn finish(&self) -> Vec<u8> {
        self.data.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_writer_writes_what_the_reader_reads() {
        let data = Writer::new().u8(7).u16(0x1234).bytes(b"datagram").u8(9).finish();
        let mut reader = Reader::new(&data);
        assert_eq!(reader.u8(), 7);
        assert_eq!(reader.u16(), 0x1234);
        assert_eq!(reader.bytes(), b"datagram");
        assert_eq!(reader.u8(), 9);
        assert!(reader.is_empty());
        assert_eq!((reader.u8(), reader.u16(), reader.bytes()), (0, 0, &b""[..]), "zeros past the end");
    }

    #[test]
    fn a_run_longer_than_the_input_is_cut_at_its_end() {
        let mut reader = Reader::new(&[200, 0, 1, 2, 3]);
        assert_eq!(reader.bytes(), &[1, 2, 3]);
        assert!(reader.is_empty());
    }
}
