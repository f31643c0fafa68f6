package mmsg

// GROSlot is a receive slot that holds any UDP_GRO buffer whole: a
// coalesced buffer is at most one UDP datagram's worth (the 16-bit UDP
// length, 65535 with its header), and one byte more keeps "a full slot
// means truncated" true.
const GROSlot = 1 << 16

// Split says how a received buffer of n bytes with UDP_GRO segment size seg
// (from [ParseRecvControl]) divides into datagrams: each is seg bytes long
// but the last, which may be shorter, so datagram k is buf[k*seg:min((k+1)*seg, n)].
// It returns seg as it should be used (n itself when the buffer is one
// datagram: seg not positive, or not less than n) and the count, at least 1
// (an empty datagram is one too).
func Split(n, seg int) (size, count int) {
	if seg <= 0 || seg >= n {
		return n, 1
	}
	return seg, (n + seg - 1) / seg
}
