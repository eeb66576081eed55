package icetable

// BeforeCompactionCommit runs fn between a compaction's joins and its
// commit, for tests that change the table there.
func (t *Table) BeforeCompactionCommit(fn func()) { t.beforeCompactionCommit = fn }
