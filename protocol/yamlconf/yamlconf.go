// Package yamlconf decodes configuration files strictly: it walks the YAML
// node tree beside the Go type, so an unknown key, a repeated key or a
// value of the wrong kind is refused with the file, the line and the full
// key (sensors.file.paths[1]), and later checks can name the line of any
// key they refuse.
//
// Decoding goes over the value it is given, so keys absent from the file
// keep the defaults already set. Struct fields are matched by their yaml
// tag; a field of type yaml.Node receives its subtree as is; types that
// implement yaml.Unmarshaler decode themselves.
package yamlconf

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cordon-edr/cordon/protocol/suggest"
)

// Error is a refused configuration value.
type Error struct {
	File string
	// Line is 0 when the key is not in the file (a value from the
	// environment or a flag, or a missing key).
	Line int
	// Key is the dotted path of the key, with [i] for list items; empty
	// for the document itself.
	Key string
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ": line %d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": ")
		b.WriteString(e.Key)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Doc is a decoded file: it knows the line of every key it holds.
type Doc struct {
	File  string
	lines map[string]int
	nodes map[string]*yaml.Node

	visits int
}

// Line returns the line of key's value in the file, or of its nearest
// parent in the file, or 0.
func (d *Doc) Line(key string) int {
	for key != "" {
		if l, ok := d.lines[key]; ok {
			return l
		}
		key = parent(key)
	}
	return 0
}

// Node returns the node of key's value, or nil when the file does not
// hold the key.
func (d *Doc) Node(key string) *yaml.Node { return d.nodes[key] }

// Has says whether the file sets key.
func (d *Doc) Has(key string) bool { _, ok := d.lines[key]; return ok }

// Errorf returns an *Error for key, at its line.
func (d *Doc) Errorf(key, format string, args ...any) error {
	return &Error{File: d.File, Line: d.Line(key), Key: key, Err: fmt.Errorf(format, args...)}
}

// Wrap returns err as an *Error for key, at its line; an error that
// starts with "line N: " (from a parser of the key's subtree) gives its
// own line.
func (d *Doc) Wrap(key string, err error) error {
	line := d.Line(key)
	if rest, ok := strings.CutPrefix(err.Error(), "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if l, perr := strconv.Atoi(num); perr == nil && l > 0 {
				line, err = l, errors.New(tail)
			}
		}
	}
	return &Error{File: d.File, Line: line, Key: key, Err: err}
}

// parent drops the last element of a key path.
func parent(key string) string {
	if strings.HasSuffix(key, "]") {
		if i := strings.LastIndexByte(key, '['); i >= 0 {
			return key[:i]
		}
	}
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[:i]
	}
	return ""
}

// Decode decodes data, named file in errors, over v (a pointer to a
// struct). An empty document leaves v as it is.
func Decode(file string, data []byte, v any) (*Doc, error) {
	d := &Doc{File: file, lines: map[string]int{}, nodes: map[string]*yaml.Node{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		return nil, syntaxError(file, err)
	}
	var second yaml.Node
	if err := dec.Decode(&second); !errors.Is(err, io.EOF) {
		line := second.Line
		if err != nil {
			return nil, syntaxError(file, err)
		}
		return nil, &Error{File: file, Line: line, Err: errors.New("a second YAML document: a configuration file holds one")}
	}
	n := &root
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return d, nil
		}
		n = n.Content[0]
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("yamlconf: Decode needs a pointer to a struct")
	}
	if isNull(n) {
		return d, nil
	}
	if err := d.decode("", n, rv.Elem(), 0); err != nil {
		return nil, err
	}
	return d, nil
}

// syntaxError turns a yaml.v3 parse error ("yaml: line 3: ...") into an
// *Error with its line.
func syntaxError(file string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	line := 0
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if num, tail, ok := strings.Cut(rest, ": "); ok {
			if l, err := strconv.Atoi(num); err == nil {
				line, msg = l, tail
			}
		}
	}
	return &Error{File: file, Line: line, Err: fmt.Errorf("not valid YAML: %s", msg)}
}

var (
	nodeType        = reflect.TypeFor[yaml.Node]()
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// maxDepth bounds nesting and maxNodes the values visited: aliases can
// make a small file deep or wide.
const (
	maxDepth = 64
	maxNodes = 100_000
)

func (d *Doc) decode(key string, n *yaml.Node, v reflect.Value, depth int) error {
	if depth > maxDepth {
		return &Error{File: d.File, Line: n.Line, Key: key, Err: errors.New("nested too deeply")}
	}
	if d.visits++; d.visits > maxNodes {
		return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("more than %d values (aliases expanding?)", maxNodes)}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return &Error{File: d.File, Line: n.Line, Key: key, Err: errors.New("unknown alias")}
		}
		n = n.Alias
	}
	if key != "" {
		d.lines[key] = n.Line
		d.nodes[key] = n
	}
	t := v.Type()
	switch {
	case t == nodeType:
		v.Set(reflect.ValueOf(*n))
		return nil
	case reflect.PointerTo(t).Implements(unmarshalerType), reflect.PointerTo(t).Implements(textType):
		return d.leaf(key, n, v)
	}
	switch t.Kind() {
	case reflect.Struct:
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("want a mapping of keys, got %s", describe(n))}
		}
		fields := structFields(t)
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			name := k.Value
			sub := join(key, name)
			if k.Kind != yaml.ScalarNode {
				return &Error{File: d.File, Line: k.Line, Key: key, Err: errors.New("a key must be a plain word")}
			}
			if first, ok := seen[name]; ok {
				return &Error{File: d.File, Line: k.Line, Key: sub, Err: fmt.Errorf("repeated (first at line %d)", first)}
			}
			seen[name] = k.Line
			idx, ok := fields[name]
			if !ok {
				return &Error{File: d.File, Line: k.Line, Key: sub, Err: fmt.Errorf("unknown key%s", suggestKey(name, fields))}
			}
			if err := d.decode(sub, val, v.FieldByIndex(idx), depth+1); err != nil {
				return err
			}
		}
		return nil
	case reflect.Slice:
		if isNull(n) {
			v.Set(reflect.Zero(t))
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("want a list, got %s", describe(n))}
		}
		s := reflect.MakeSlice(t, len(n.Content), len(n.Content))
		for i, item := range n.Content {
			if err := d.decode(fmt.Sprintf("%s[%d]", key, i), item, s.Index(i), depth+1); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			panic("yamlconf: only maps with string keys are supported")
		}
		if isNull(n) {
			return nil
		}
		if n.Kind != yaml.MappingNode {
			return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("want a mapping of keys, got %s", describe(n))}
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(t))
		}
		seen := map[string]int{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, val := n.Content[i], n.Content[i+1]
			sub := join(key, k.Value)
			if k.Kind != yaml.ScalarNode {
				return &Error{File: d.File, Line: k.Line, Key: key, Err: errors.New("a key must be a plain word")}
			}
			if first, ok := seen[k.Value]; ok {
				return &Error{File: d.File, Line: k.Line, Key: sub, Err: fmt.Errorf("repeated (first at line %d)", first)}
			}
			seen[k.Value] = k.Line
			elem := reflect.New(t.Elem()).Elem()
			if old := v.MapIndex(reflect.ValueOf(k.Value).Convert(t.Key())); old.IsValid() {
				elem.Set(old)
			}
			if err := d.decode(sub, val, elem, depth+1); err != nil {
				return err
			}
			v.SetMapIndex(reflect.ValueOf(k.Value).Convert(t.Key()), elem)
		}
		return nil
	case reflect.Pointer:
		if isNull(n) {
			v.Set(reflect.Zero(t))
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(t.Elem()))
		}
		return d.decode(key, n, v.Elem(), depth)
	}
	return d.leaf(key, n, v)
}

// leaf decodes a scalar value, with an error in the reader's terms.
func (d *Doc) leaf(key string, n *yaml.Node, v reflect.Value) error {
	t := v.Type()
	if isNull(n) {
		return nil // "key:" with nothing keeps the default
	}
	plain := !reflect.PointerTo(t).Implements(unmarshalerType) && !reflect.PointerTo(t).Implements(textType)
	if plain && n.Kind != yaml.ScalarNode {
		return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("want %s, got %s", want(t), describe(n))}
	}
	tmp := reflect.New(t)
	if err := n.Decode(tmp.Interface()); err != nil {
		var te *yaml.TypeError
		if plain && errors.As(err, &te) {
			return &Error{File: d.File, Line: n.Line, Key: key, Err: fmt.Errorf("%q is not %s", n.Value, want(t))}
		}
		return &Error{File: d.File, Line: n.Line, Key: key, Err: cleanError(err)}
	}
	v.Set(tmp.Elem())
	return nil
}

// cleanError drops yaml.v3's "yaml: unmarshal errors:\n  line N: "
// framing, as the line is already in the *Error.
func cleanError(err error) error {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: unmarshal errors:\n")
	msg = strings.TrimSpace(msg)
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if _, tail, ok := strings.Cut(rest, ": "); ok {
			msg = tail
		}
	}
	return errors.New(msg)
}

// want names what a Go type accepts.
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration such as 30s, 5m or 1h"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number, 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a text value"
	}
	return "a " + t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(key, name string) string {
	if key == "" {
		return name
	}
	return key + "." + name
}

// structFields maps the yaml names of t's exported fields to their index.
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Index
	}
	return out
}

// suggestKey names the closest known key, or lists them when few.
func suggestKey(name string, fields map[string][]int) string {
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	slices.Sort(known)
	if best := suggest.Closest(name, known, 2); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return "; known keys: " + strings.Join(known, ", ")
}

// Resolve returns the configuration file to read: flag when given, else
// defaultPath when it exists, else "" (the built-in defaults).
func Resolve(flag, defaultPath string) string {
	if flag != "" {
		return flag
	}
	if _, err := os.Stat(defaultPath); err == nil {
		return defaultPath
	}
	return ""
}

// ReadFile reads a configuration file; "" reads nothing.
func ReadFile(path string) ([]byte, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("configuration file %s does not exist", path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return data, nil
}
