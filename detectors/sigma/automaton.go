package sigma

// automaton is an Aho-Corasick automaton over lower-cased ASCII literals,
// compiled to a dense transition table over byte classes. Scanning text
// sets the bits of the rules whose literals occur in it.
type automaton struct {
	class  [256]uint8 // byte → class; upper-case ASCII shares its lower-case class
	nclass int
	delta  []int32  // state*nclass + class → next state
	outIdx []int32  // state → index into outs, or -1
	outs   []uint64 // words bitsets, one per state with output
	words  int
}

// buildAutomaton compiles lits; owners[i] is the bit that lits[i] sets.
func buildAutomaton(lits []string, owners []int, words int) *automaton {
	a := &automaton{words: words}
	// Byte classes: one per byte that appears in a literal, plus 0 for
	// every other byte.
	a.nclass = 1
	for _, l := range lits {
		for i := 0; i < len(l); i++ {
			b := l[i]
			if a.class[b] == 0 {
				a.class[b] = uint8(a.nclass)
				a.nclass++
			}
		}
	}
	for b := 'A'; b <= 'Z'; b++ {
		a.class[b] = a.class[b+'a'-'A']
	}
	// Trie.
	type tnode struct {
		next map[uint8]int32
		out  []int
	}
	trie := []tnode{{next: map[uint8]int32{}}}
	for i, l := range lits {
		s := int32(0)
		for j := 0; j < len(l); j++ {
			c := a.class[l[j]]
			n, ok := trie[s].next[c]
			if !ok {
				n = int32(len(trie))
				trie = append(trie, tnode{next: map[uint8]int32{}})
				trie[s].next[c] = n
			}
			s = n
		}
		trie[s].out = append(trie[s].out, owners[i])
	}
	n := len(trie)
	a.delta = make([]int32, n*a.nclass)
	fail := make([]int32, n)
	outBits := make([][]uint64, n)
	addOut := func(s int32, bit int) {
		if outBits[s] == nil {
			outBits[s] = make([]uint64, words)
		}
		outBits[s][bit/64] |= 1 << (bit % 64)
	}
	for s := range trie {
		for _, bit := range trie[s].out {
			addOut(int32(s), bit)
		}
	}
	// Breadth-first: fill transitions and failure links.
	queue := make([]int32, 0, n)
	for c := 0; c < a.nclass; c++ {
		if t, ok := trie[0].next[uint8(c)]; ok {
			a.delta[c] = t
			fail[t] = 0
			queue = append(queue, t)
		}
	}
	for len(queue) > 0 {
		s := queue[0]
		queue = queue[1:]
		f := fail[s]
		if outBits[f] != nil {
			for w, x := range outBits[f] {
				if x != 0 {
					if outBits[s] == nil {
						outBits[s] = make([]uint64, words)
					}
					outBits[s][w] |= x
				}
			}
		}
		for c := 0; c < a.nclass; c++ {
			if t, ok := trie[s].next[uint8(c)]; ok {
				a.delta[int(s)*a.nclass+c] = t
				fail[t] = a.delta[int(f)*a.nclass+c]
				queue = append(queue, t)
			} else {
				a.delta[int(s)*a.nclass+c] = a.delta[int(f)*a.nclass+c]
			}
		}
	}
	a.outIdx = make([]int32, n)
	for s := range outBits {
		if outBits[s] == nil {
			a.outIdx[s] = -1
			continue
		}
		a.outIdx[s] = int32(len(a.outs) / max(words, 1))
		a.outs = append(a.outs, outBits[s]...)
	}
	return a
}

// scan ORs into cand the bits of the literals found in text. It returns
// false, having done nothing useful, when text holds non-ASCII bytes.
func (a *automaton) scan(text string, cand []uint64) bool {
	s := int32(0)
	nc := int32(a.nclass)
	for i := 0; i < len(text); i++ {
		b := text[i]
		if b >= 0x80 {
			return false
		}
		s = a.delta[s*nc+int32(a.class[b])]
		if o := a.outIdx[s]; o >= 0 {
			w := int(o) * a.words
			for j := 0; j < a.words; j++ {
				cand[j] |= a.outs[w+j]
			}
		}
	}
	return true
}
