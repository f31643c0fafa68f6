package packet

// Echo replies to every packet with its payload, byte for byte.
type Echo struct{}

// ServePacket queues a copy of p.Data as the reply.
func (Echo) ServePacket(w *ReplyWriter, p *Packet) error {
	_, err := w.Write(p.Data)
	return err
}

// Discard accepts every packet and sends nothing; the shard's counters are its only trace.
type Discard struct{}

// ServePacket does nothing.
func (Discard) ServePacket(*ReplyWriter, *Packet) error { return nil }

var (
	_ Handler = Echo{}
	_ Handler = Discard{}
)
