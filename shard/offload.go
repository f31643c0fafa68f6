package shard

import "strconv"

// Offload says whether a shard uses a kernel offload (GSO: UDP_SEGMENT for
// replies; GRO: UDP_GRO on receive, where Off also turns it off on an
// inherited socket). Its String form ("auto", "on", "off") is the spelling
// UnmarshalText accepts.
type Offload uint8

const (
	// OffloadAuto (the zero value) uses the offload where the kernel
	// supports it, and stops using it on a socket whose path refuses it.
	OffloadAuto Offload = iota
	// OffloadOn is OffloadAuto that refuses to start where the kernel
	// does not support the offload at all.
	OffloadOn
	// OffloadOff never uses it.
	OffloadOff
)

func (o Offload) String() string {
	switch o {
	case OffloadAuto:
		return "auto"
	case OffloadOn:
		return "on"
	case OffloadOff:
		return "off"
	}
	return "Offload(" + strconv.Itoa(int(o)) + ")"
}

// UnmarshalText sets o from its String form; anything else is a *ConfigError.
func (o *Offload) UnmarshalText(b []byte) error {
	for v := OffloadAuto; v <= OffloadOff; v++ {
		if v.String() == string(b) {
			*o = v
			return nil
		}
	}
	return &ConfigError{"Offload", string(b), "unknown offload setting", "use auto, on or off"}
}
