package blockstore

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"

	"github.com/golang/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/strata-metrics/strata/pkg/seriespb"
)

// ExemplarsFilename is the file holding a block's exemplars. Prometheus' block format has no place for
// them, so Strata keeps them beside the index and chunks; Prometheus and its tools ignore the file.
//
// The file is a header (exemplarsMagic) followed by a snappy stream of records, each a uvarint length and
// a seriespb.SeriesExemplars: series in label order, a series' exemplars oldest first. A series with
// many exemplars continues in the next records under the same labels, so no record is large.
const ExemplarsFilename = "exemplars"

// exemplarsMagic starts every exemplar file: the format's name and version.
const exemplarsMagic = "STRATAEX\x01"

const (
	// exemplarRecordBytes is about where a writer cuts a series into another record.
	exemplarRecordBytes = 256 << 10
	// maxExemplarRecordBytes bounds a record a reader accepts, so a corrupt length cannot exhaust memory.
	maxExemplarRecordBytes = 8 << 20
)

// ErrExemplarsCorrupted is wrapped by the errors of exemplar files that cannot be decoded.
var ErrExemplarsCorrupted = errors.New("exemplar file corrupted")

// ExemplarWriter writes a block's exemplar file. The file appears under its name only once Close
// succeeds, so a crash never leaves a truncated one.
type ExemplarWriter struct {
	name, tmp string
	f         *os.File
	sw        *snappy.Writer
	last      labels.Labels
	started   bool
	count     int64
	buf       []byte
}

// NewExemplarWriter starts the exemplar file of the block in dir.
func NewExemplarWriter(dir string) (*ExemplarWriter, error) {
	name := filepath.Join(dir, ExemplarsFilename)
	tmp := name + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, fmt.Errorf("create exemplar file: %w", err)
	}
	if _, err := f.WriteString(exemplarsMagic); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("write exemplar file: %w", err)
	}
	return &ExemplarWriter{name: name, tmp: tmp, f: f, sw: snappy.NewBufferedWriter(f)}, nil
}

// Append writes a series' exemplars, which must be oldest first. Series must come in label order; a
// series may be appended again right after itself.
func (w *ExemplarWriter) Append(lset labels.Labels, exemplars []exemplar.Exemplar) error {
	if len(exemplars) == 0 {
		return nil
	}
	if w.started && labels.Compare(lset, w.last) < 0 {
		return fmt.Errorf("exemplar file: series %s appended after %s", lset, w.last)
	}
	w.started, w.last = true, lset.Copy()
	seriesLabels := seriespb.FromLabels(lset)
	rec := &seriespb.SeriesExemplars{Labels: seriesLabels}
	size := 0
	for _, e := range exemplars {
		ex := &seriespb.Exemplar{Labels: seriespb.FromLabels(e.Labels), Value: e.Value, TimestampMs: e.Ts}
		rec.Exemplars = append(rec.Exemplars, ex)
		size += proto.Size(ex)
		if size >= exemplarRecordBytes {
			if err := w.writeRecord(rec); err != nil {
				return err
			}
			rec, size = &seriespb.SeriesExemplars{Labels: seriesLabels}, 0
		}
	}
	if len(rec.Exemplars) > 0 {
		return w.writeRecord(rec)
	}
	return nil
}

func (w *ExemplarWriter) writeRecord(rec *seriespb.SeriesExemplars) error {
	var err error
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(proto.Size(rec)))
	w.buf, err = proto.MarshalOptions{}.MarshalAppend(w.buf, rec)
	if err != nil {
		return fmt.Errorf("encode exemplars: %w", err)
	}
	if _, err := w.sw.Write(w.buf); err != nil {
		return fmt.Errorf("write exemplar file: %w", err)
	}
	w.count += int64(len(rec.Exemplars))
	return nil
}

// Count is how many exemplars were appended.
func (w *ExemplarWriter) Count() int64 { return w.count }

// Close finishes the file. A file without exemplars is not kept (a block without one has none), and
// replaces an earlier one.
func (w *ExemplarWriter) Close() error {
	err := w.sw.Close()
	if err == nil {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err == nil && w.count == 0 {
		// Nor one left by an earlier attempt.
		if err := os.Remove(w.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return os.Remove(w.tmp)
	}
	if err == nil {
		err = fileutil.Replace(w.tmp, w.name)
	}
	if err != nil {
		_ = os.Remove(w.tmp)
		return fmt.Errorf("write exemplar file: %w", err)
	}
	return nil
}

// Abort drops the file being written.
func (w *ExemplarWriter) Abort() {
	_ = w.f.Close()
	_ = os.Remove(w.tmp)
}

// ExemplarReader reads an exemplar file series by series.
type ExemplarReader struct {
	br      *bufio.Reader
	buf     []byte
	builder labels.ScratchBuilder
	// want, when set, selects the series whose exemplars are decoded; the others are skipped.
	want func(labels.Labels) bool
	// budget, when set, is what the readers sharing it may still decode; overBudget is their error once
	// it is spent.
	budget     *int64
	overBudget error
	// next is a record read ahead, to join a series cut into several records.
	next *exemplarRecord
}

// exemplarRecord is one decoded record; skipped records have no exemplars decoded.
type exemplarRecord struct {
	lset      labels.Labels
	exemplars []exemplar.Exemplar
}

// NewExemplarReader checks the header of the exemplar file read from r.
func NewExemplarReader(r io.Reader) (*ExemplarReader, error) {
	magic := make([]byte, len(exemplarsMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("%w: header: %w", ErrExemplarsCorrupted, err)
	}
	if string(magic) != exemplarsMagic {
		return nil, fmt.Errorf("%w: unknown header %q", ErrExemplarsCorrupted, magic)
	}
	return &ExemplarReader{br: bufio.NewReader(snappy.NewReader(r))}, nil
}

// SelectSeries makes Next return only the series want accepts, without decoding the exemplars of the
// others: a selective query reads a file at the cost of its series' labels.
func (r *ExemplarReader) SelectSeries(want func(labels.Labels) bool) { r.want = want }

// LimitExemplars bounds the exemplars that the readers sharing remaining decode together: once they
// decode more, Next fails with err. It bounds the memory of a merge of many files.
func (r *ExemplarReader) LimitExemplars(remaining *int64, err error) {
	r.budget, r.overBudget = remaining, err
}

// Next returns the next series and its exemplars, oldest first, or io.EOF after the last.
func (r *ExemplarReader) Next() (labels.Labels, []exemplar.Exemplar, error) {
	for {
		rec := r.next
		r.next = nil
		if rec == nil {
			var err error
			if rec, err = r.readRecord(); err != nil {
				return labels.EmptyLabels(), nil, err
			}
		}
		selected := r.want == nil || r.want(rec.lset)
		lset, exemplars := rec.lset, rec.exemplars
		for {
			next, err := r.readRecord()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return labels.EmptyLabels(), nil, err
			}
			if !labels.Equal(next.lset, lset) {
				r.next = next
				break
			}
			exemplars = append(exemplars, next.exemplars...)
		}
		if selected {
			return lset, exemplars, nil
		}
		if r.next == nil {
			return labels.EmptyLabels(), nil, io.EOF
		}
	}
}

// readRecord reads and decodes one record. The encoding is seriespb.SeriesExemplars', decoded by hand:
// the generic decoder allocates a message per label, and could not skip a series' exemplars.
func (r *ExemplarReader) readRecord() (*exemplarRecord, error) {
	n, err := binary.ReadUvarint(r.br)
	if errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExemplarsCorrupted, err)
	}
	if n > maxExemplarRecordBytes {
		return nil, fmt.Errorf("%w: a record of %d bytes, at most %d are allowed", ErrExemplarsCorrupted, n, maxExemplarRecordBytes)
	}
	r.buf = slices.Grow(r.buf[:0], int(n))[:n]
	if _, err := io.ReadFull(r.br, r.buf); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrExemplarsCorrupted, err)
	}
	rec, err := r.decodeRecord(r.buf)
	if err != nil && (r.overBudget == nil || !errors.Is(err, r.overBudget)) {
		return nil, fmt.Errorf("%w: %w", ErrExemplarsCorrupted, err)
	}
	return rec, err
}

// Field numbers of seriespb's SeriesExemplars, Exemplar and Label messages.
const (
	seriesExemplarsLabelsField    = 1
	seriesExemplarsExemplarsField = 2
	exemplarLabelsField           = 1
	exemplarValueField            = 2
	exemplarTimestampField        = 3
	labelNameField                = 1
	labelValueField               = 2
)

func (r *ExemplarReader) decodeRecord(b []byte) (*exemplarRecord, error) {
	var (
		rec       exemplarRecord
		exemplars [][]byte
	)
	r.builder.Reset()
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == seriesExemplarsLabelsField && typ == protowire.BytesType:
			return r.addLabel(v)
		case num == seriesExemplarsExemplarsField && typ == protowire.BytesType:
			exemplars = append(exemplars, v)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.builder.Sort()
	rec.lset = r.builder.Labels()
	if r.want != nil && !r.want(rec.lset) {
		return &rec, nil
	}
	if r.budget != nil {
		if *r.budget -= int64(len(exemplars)); *r.budget < 0 {
			return nil, r.overBudget
		}
	}
	rec.exemplars = make([]exemplar.Exemplar, 0, len(exemplars))
	for _, eb := range exemplars {
		e := exemplar.Exemplar{HasTs: true}
		r.builder.Reset()
		err := forEachField(eb, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
			switch {
			case num == exemplarLabelsField && typ == protowire.BytesType:
				return r.addLabel(v)
			case num == exemplarValueField && typ == protowire.Fixed64Type:
				e.Value = math.Float64frombits(x)
			case num == exemplarTimestampField && typ == protowire.VarintType:
				e.Ts = int64(x)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		r.builder.Sort()
		e.Labels = r.builder.Labels()
		rec.exemplars = append(rec.exemplars, e)
	}
	return &rec, nil
}

// addLabel decodes a seriespb.Label into the builder.
func (r *ExemplarReader) addLabel(b []byte) error {
	var name, value []byte
	err := forEachField(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ == protowire.BytesType {
			switch num {
			case labelNameField:
				name = v
			case labelValueField:
				value = v
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.builder.Add(string(name), string(value))
	return nil
}

// forEachField calls f with each field of the protobuf message b: its number and type, and its bytes
// (length-delimited fields) or its number (varint and fixed fields).
func forEachField(b []byte, f func(num protowire.Number, typ protowire.Type, bytes []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// ExemplarKeep decides whether an exemplar of a series is kept when exemplar files are merged.
type ExemplarKeep func(lset labels.Labels, e exemplar.Exemplar) bool

// MergeExemplarFiles writes into outDir's exemplar file the union of the exemplar files of inDirs (a
// directory without one has no exemplars), keeping an exemplar found in several once and those keep
// accepts (nil: all). It returns how many exemplars it wrote; with none, outDir gets no file.
func MergeExemplarFiles(outDir string, inDirs []string, keep ExemplarKeep) (int64, error) {
	var readers []*ExemplarReader
	for _, dir := range inDirs {
		f, err := os.Open(filepath.Join(dir, ExemplarsFilename))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, err
		}
		defer f.Close()
		r, err := NewExemplarReader(f)
		if err != nil {
			return 0, fmt.Errorf("block %s: %w", filepath.Base(dir), err)
		}
		readers = append(readers, r)
	}
	if len(readers) == 0 {
		return 0, nil
	}
	w, err := NewExemplarWriter(outDir)
	if err != nil {
		return 0, err
	}
	if err := MergeExemplars(readers, keep, w.Append); err != nil {
		w.Abort()
		return 0, err
	}
	if err := w.Close(); err != nil {
		return 0, err
	}
	return w.Count(), nil
}

// MergeExemplars calls each with every series of the readers (exemplar files of blocks) in label order,
// once, with its exemplars of every file, oldest first, each (time, value, labels) once, those that keep
// accepts (nil: all); series left without any are skipped. Only a series at a time is held in memory.
func MergeExemplars(readers []*ExemplarReader, keep ExemplarKeep, each func(labels.Labels, []exemplar.Exemplar) error) error {
	type input struct {
		r         *ExemplarReader
		lset      labels.Labels
		exemplars []exemplar.Exemplar
	}
	inputs := make([]*input, 0, len(readers))
	for _, r := range readers {
		in := &input{r: r}
		var err error
		if in.lset, in.exemplars, err = r.Next(); errors.Is(err, io.EOF) {
			continue
		} else if err != nil {
			return err
		}
		inputs = append(inputs, in)
	}
	for len(inputs) > 0 {
		lowest := inputs[0].lset
		for _, in := range inputs[1:] {
			if labels.Compare(in.lset, lowest) < 0 {
				lowest = in.lset
			}
		}
		var merged []exemplar.Exemplar
		remaining := inputs[:0]
		for _, in := range inputs {
			if labels.Equal(in.lset, lowest) {
				merged = append(merged, in.exemplars...)
				var err error
				in.lset, in.exemplars, err = in.r.Next()
				if errors.Is(err, io.EOF) {
					continue
				}
				if err != nil {
					return err
				}
			}
			remaining = append(remaining, in)
		}
		inputs = remaining
		kept := DedupExemplars(merged)
		if keep != nil {
			kept = slices.DeleteFunc(kept, func(e exemplar.Exemplar) bool { return !keep(lowest, e) })
		}
		if len(kept) > 0 {
			if err := each(lowest, kept); err != nil {
				return err
			}
		}
	}
	return nil
}

// DedupExemplars sorts a series' exemplars oldest first (ties by value, then labels, so every replica's
// copy sorts alike) and keeps each (time, value, labels) once: replicas of a series hold the same
// exemplars. It reorders and reuses es.
func DedupExemplars(es []exemplar.Exemplar) []exemplar.Exemplar {
	slices.SortFunc(es, func(a, b exemplar.Exemplar) int {
		return cmp.Or(cmp.Compare(a.Ts, b.Ts), cmp.Compare(math.Float64bits(a.Value), math.Float64bits(b.Value)), labels.Compare(a.Labels, b.Labels))
	})
	return slices.CompactFunc(es, sameExemplar)
}

// sameExemplar compares value bits, so NaN equals itself.
func sameExemplar(a, b exemplar.Exemplar) bool {
	return a.Ts == b.Ts && math.Float64bits(a.Value) == math.Float64bits(b.Value) && labels.Equal(a.Labels, b.Labels)
}
