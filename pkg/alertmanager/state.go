package alertmanager

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// stateMagic starts every state blob: it names the format and its version, so a blob of another
// format is refused instead of being half-read.
const stateMagic = "strata-am-state/1\n"

// encodeState packs a tenant's silences and notification log, each in its package's own snapshot
// format (Silences.MarshalBinary, Log.MarshalBinary), into one blob: the magic, then each part
// preceded by its length as a uvarint.
func encodeState(silences, nflog []byte) []byte {
	b := make([]byte, 0, len(stateMagic)+2*binary.MaxVarintLen64+len(silences)+len(nflog))
	b = append(b, stateMagic...)
	b = binary.AppendUvarint(b, uint64(len(silences)))
	b = append(b, silences...)
	b = binary.AppendUvarint(b, uint64(len(nflog)))
	return append(b, nflog...)
}

var errBadState = errors.New("not an Alertmanager state blob")

// decodeState returns the parts encodeState packed. They alias b.
func decodeState(b []byte) (silences, nflog []byte, err error) {
	rest, ok := bytes.CutPrefix(b, []byte(stateMagic))
	if !ok {
		return nil, nil, errBadState
	}
	if silences, rest, err = cutPart(rest); err != nil {
		return nil, nil, fmt.Errorf("silences: %w", err)
	}
	if nflog, rest, err = cutPart(rest); err != nil {
		return nil, nil, fmt.Errorf("notification log: %w", err)
	}
	if len(rest) != 0 {
		return nil, nil, fmt.Errorf("%w: %d bytes after the notification log", errBadState, len(rest))
	}
	return silences, nflog, nil
}

func cutPart(b []byte) (part, rest []byte, err error) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > uint64(len(b)-size) {
		return nil, nil, fmt.Errorf("%w: bad length", errBadState)
	}
	b = b[size:]
	return b[:n], b[n:], nil
}

// sortRecords returns a stream of length-delimited records (the snapshot format of silences and the
// notification log) with its records in byte order. Both packages write their records in map order,
// which changes from one call to the next; sorted, an unchanged state gives the same bytes and need
// not be written again. A stream that does not parse is returned as it is.
func sortRecords(b []byte) []byte {
	var records [][]byte
	for rest := b; len(rest) > 0; {
		n, size := binary.Uvarint(rest)
		if size <= 0 || n > uint64(len(rest)-size) {
			return b
		}
		end := size + int(n)
		records = append(records, rest[:end])
		rest = rest[end:]
	}
	slices.SortFunc(records, bytes.Compare)
	return bytes.Join(records, nil)
}
