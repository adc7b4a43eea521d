//! One TCP connection written as a pcap file, for the tshark tests of TCP protocols
//! (Diameter on 3868, MSRP on 2855): checksummed IPv4/TCP segments with running sequence numbers.

/// A pcap file (Ethernet, IPv4, TCP on 127.0.0.1) of one TCP connection, built in memory.
pub(crate) struct TcpPcap {
    /// The pcap file so far.
    pub(crate) buf: Vec<u8>,
    packets: u32,
    /// next sequence number of the client and the server
    seq: [u32; 2],
    /// client and server ports
    ports: (u16, u16),
}

fn csum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], *w.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl TcpPcap {
    /// The pcap header and a three-way handshake between `client` and `server` ports.
    pub(crate) fn new(client: u16, server: u16) -> TcpPcap {
        let mut buf = Vec::new();
        buf.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        buf.extend_from_slice(&2u16.to_le_bytes());
        buf.extend_from_slice(&4u16.to_le_bytes());
        buf.extend_from_slice(&0i32.to_le_bytes());
        buf.extend_from_slice(&0u32.to_le_bytes());
        buf.extend_from_slice(&65535u32.to_le_bytes());
        buf.extend_from_slice(&1u32.to_le_bytes()); // Ethernet
        let mut t = TcpPcap {
            buf,
            packets: 0,
            seq: [1000, 50000],
            ports: (client, server),
        };
        // three-way handshake
        t.segment(0, 0x02, &[]); // SYN
        t.seq[0] += 1;
        t.segment(1, 0x12, &[]); // SYN-ACK
        t.seq[1] += 1;
        t.segment(0, 0x10, &[]); // ACK
        t
    }

    /// One segment from side `from` (0 client, 1 server) with `flags` and `payload`.
    pub(crate) fn segment(&mut self, from: usize, flags: u8, payload: &[u8]) {
        let (sp, dp) = if from == 0 {
            self.ports
        } else {
            (self.ports.1, self.ports.0)
        };
        let tcp_len = 20 + payload.len();
        let ip_len = 20 + tcp_len;
        assert!(ip_len <= 65535);
        let mut f = Vec::with_capacity(14 + ip_len);
        let (a, b) = ([2u8, 0, 0, 0, 0, 1], [2u8, 0, 0, 0, 0, 2]);
        let (src_mac, dst_mac) = if from == 0 { (a, b) } else { (b, a) };
        f.extend_from_slice(&dst_mac);
        f.extend_from_slice(&src_mac);
        f.extend_from_slice(&0x0800u16.to_be_bytes());
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&(ip_len as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&(self.packets as u16).to_be_bytes());
        ip[6] = 0x40;
        ip[8] = 64;
        ip[9] = 6;
        ip[12..16].copy_from_slice(&[127, 0, 0, 1]);
        ip[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let ck = csum(&ip);
        ip[10..12].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&ip);
        let mut tcp = Vec::with_capacity(tcp_len);
        tcp.extend_from_slice(&sp.to_be_bytes());
        tcp.extend_from_slice(&dp.to_be_bytes());
        tcp.extend_from_slice(&self.seq[from].to_be_bytes());
        let ack = if flags & 0x10 != 0 {
            self.seq[1 - from]
        } else {
            0
        };
        tcp.extend_from_slice(&ack.to_be_bytes());
        tcp.push(5 << 4);
        tcp.push(flags);
        tcp.extend_from_slice(&65535u16.to_be_bytes()); // window
        tcp.extend_from_slice(&0u16.to_be_bytes()); // checksum, filled below
        tcp.extend_from_slice(&0u16.to_be_bytes()); // urgent
        tcp.extend_from_slice(payload);
        let mut pseudo = vec![127, 0, 0, 1, 127, 0, 0, 1, 0, 6];
        pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
        pseudo.extend_from_slice(&tcp);
        let ck = csum(&pseudo);
        tcp[16..18].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&tcp);
        let len = f.len() as u32;
        self.buf
            .extend_from_slice(&(1_700_000_000 + self.packets).to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&len.to_le_bytes());
        self.buf.extend_from_slice(&f);
        self.packets += 1;
        self.seq[from] = self.seq[from].wrapping_add(payload.len() as u32);
    }
}
