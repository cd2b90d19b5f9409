package shards

// keySpan is the set of keys a request names, in etcd's encoding: a single key
// when End is empty, every key >= Key when End is "\x00", else [Key, End).
type keySpan struct {
	Key, End string
}

// spanOf converts etcd's key/range_end pair.
func spanOf(key, rangeEnd []byte) keySpan { return keySpan{Key: string(key), End: string(rangeEnd)} }

// single reports whether the span names exactly one key.
func (s keySpan) single() bool { return s.End == "" }

// bounds returns the half-open interval [start, end) the span covers, with
// end "" meaning unbounded. A single key k becomes [k, k+"\x00").
func (s keySpan) bounds() (start, end string) {
	switch s.End {
	case "":
		return s.Key, s.Key + "\x00"
	case "\x00":
		return s.Key, ""
	default:
		return s.Key, s.End
	}
}

// empty reports whether the span can hold no key at all (end <= key).
func (s keySpan) empty() bool {
	start, end := s.bounds()
	return end != "" && end <= start
}
