package model

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"math"
	"reflect"
	"slices"

	"google.golang.org/protobuf/proto"
)

// StructureHash hashes everything in the mesh except the endpoints of
// services whose endpoints are served over EDS (every resolution but DNS).
// Two meshes with the same hash differ at most in those endpoints, so
// listeners, routes and clusters translate identically and only
// ClusterLoadAssignments need to be rebuilt (and validated) again.
// Endpoints of DNS services are kept: they are inlined in clusters. m is not
// modified.
//
// The hash covers every exported field of every model type (by reflection,
// so a field added to the model is covered without touching this function)
// and the deterministic wire form of every embedded istio.io/api message. It
// is stable within one process, not across builds.
func StructureHash(m *Mesh) ([32]byte, error) {
	if m == nil {
		return [32]byte{}, fmt.Errorf("model: hashing a nil mesh")
	}
	blank := *m
	blank.Services = make([]*Service, len(m.Services))
	for i, svc := range m.Services {
		c := *svc
		if c.Resolution != ResolutionDNS {
			c.Endpoints = nil
		}
		blank.Services[i] = &c
	}
	w := &structWriter{h: sha256.New(), types: map[reflect.Type]*typeInfo{}}
	if err := w.value(reflect.ValueOf(&blank)); err != nil {
		return [32]byte{}, fmt.Errorf("model: hashing mesh: %w", err)
	}
	var out [32]byte
	copy(out[:], w.h.Sum(nil))
	return out, nil
}

var protoMessage = reflect.TypeFor[proto.Message]()

// structWriter feeds a value to a hash in a self-delimiting form: every
// variable-length piece is preceded by its length and every optional one
// by a presence byte, so two different values never write the same bytes.
type structWriter struct {
	h     hash.Hash
	buf   []byte
	msg   []byte
	types map[reflect.Type]*typeInfo
}

// typeInfo is what the writer needs to know about a type, looked up once.
type typeInfo struct {
	isProto  bool  // a pointer to a generated message
	exported []int // struct fields to write
}

func (w *structWriter) info(t reflect.Type) *typeInfo {
	if ti, ok := w.types[t]; ok {
		return ti
	}
	ti := &typeInfo{isProto: t.Kind() == reflect.Pointer && t.Implements(protoMessage)}
	if t.Kind() == reflect.Struct {
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).IsExported() {
				ti.exported = append(ti.exported, i)
			}
		}
	}
	w.types[t] = ti
	return ti
}

func (w *structWriter) uint(u uint64) {
	w.buf = binary.AppendUvarint(w.buf[:0], u)
	w.h.Write(w.buf)
}

func (w *structWriter) bytes(b []byte) {
	w.uint(uint64(len(b)))
	w.h.Write(b)
}

func (w *structWriter) str(s string) {
	w.buf = binary.AppendUvarint(w.buf[:0], uint64(len(s)))
	w.buf = append(w.buf, s...)
	w.h.Write(w.buf)
}

func (w *structWriter) value(v reflect.Value) error {
	ti := w.info(v.Type())
	if ti.isProto {
		if v.IsNil() {
			w.uint(0)
			return nil
		}
		b, err := proto.MarshalOptions{Deterministic: true}.MarshalAppend(w.msg[:0], v.Interface().(proto.Message))
		if err != nil {
			return fmt.Errorf("%s: %w", v.Type(), err)
		}
		w.msg = b
		w.uint(1)
		w.bytes(b)
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			w.uint(0)
			return nil
		}
		w.uint(1)
		if v.Kind() == reflect.Interface {
			w.str(v.Elem().Type().String())
		}
		return w.value(v.Elem())
	case reflect.Struct:
		for _, i := range ti.exported {
			if err := w.value(v.Field(i)); err != nil {
				return fmt.Errorf("%s: %w", v.Type().Field(i).Name, err)
			}
		}
		return nil
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 && v.Kind() == reflect.Slice {
			w.bytes(v.Bytes())
			return nil
		}
		w.uint(uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			if err := w.value(v.Index(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.Map:
		return w.mapValue(v)
	case reflect.String:
		w.str(v.String())
		return nil
	case reflect.Bool:
		if v.Bool() {
			w.uint(1)
		} else {
			w.uint(0)
		}
		return nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		w.uint(uint64(v.Int()))
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		w.uint(v.Uint())
		return nil
	case reflect.Float32, reflect.Float64:
		w.uint(math.Float64bits(v.Float()))
		return nil
	}
	return fmt.Errorf("cannot hash a value of type %s", v.Type())
}

// mapValue writes a map's pairs in key order; keys must be strings or
// integers (all the model uses).
func (w *structWriter) mapValue(v reflect.Value) error {
	keys := v.MapKeys()
	switch v.Type().Key().Kind() {
	case reflect.String:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.String(), b.String()) })
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Int(), b.Int()) })
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		slices.SortFunc(keys, func(a, b reflect.Value) int { return cmp.Compare(a.Uint(), b.Uint()) })
	default:
		return fmt.Errorf("cannot hash a map keyed by %s", v.Type().Key())
	}
	w.uint(uint64(len(keys)))
	for _, k := range keys {
		if err := w.value(k); err != nil {
			return err
		}
		if err := w.value(v.MapIndex(k)); err != nil {
			return err
		}
	}
	return nil
}
