package modules_test

import (
	"bufio"
	"bytes"
	"fmt"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/printer"
	"go/token"
	"go/types"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/eats/eats-orders-tracking/platform/pgtest"
)

// dbPackages are the database APIs whose calls take SQL text.
var dbPackages = map[string]bool{
	"database/sql":                    true,
	"github.com/jmoiron/sqlx":         true,
	"github.com/jackc/pgx/v5":         true,
	"github.com/jackc/pgx/v5/pgxpool": true,
	"github.com/jackc/pgx/v5/pgconn":  true,
}

// dbMethods are the calls that take a query, by name. The query argument is
// the parameter the API names "query" (database/sql, sqlx) or "sql" (pgx);
// a method of the list without one (a prepared statement's Exec) has no
// SQL text to check.
var dbMethods = map[string]bool{
	"Exec": true, "ExecContext": true, "MustExec": true, "MustExecContext": true,
	"Query": true, "QueryContext": true, "Queryx": true, "QueryxContext": true,
	"QueryRow": true, "QueryRowContext": true, "QueryRowx": true, "QueryRowxContext": true,
	"Get": true, "GetContext": true, "Select": true, "SelectContext": true,
	"Prepare": true, "PrepareContext": true, "Preparex": true, "PreparexContext": true,
	"PrepareNamed": true, "PrepareNamedContext": true,
	"NamedExec": true, "NamedExecContext": true, "NamedQuery": true, "NamedQueryContext": true,
}

// TestNoStringBuiltSQL reads every non-test Go file under modules/ and
// platform/ and fails for each database call whose SQL is built at run
// time: the query argument of Exec/Query/Get/Select/Prepare… (database/sql,
// sqlx, pgx) must be a string literal or a constant, or a variable or
// struct field that only ever holds those. The one exception is an
// identifier quoted by pq.QuoteIdentifier, concatenated with constants
// (CREATE DATABASE takes no parameters). Values reach SQL only as
// parameters ($1, …).
func TestNoStringBuiltSQL(t *testing.T) {
	t.Parallel()
	root := pgtest.RepoRoot()
	pkgs, exports := listPackages(t, root, "./modules/...", "./platform/...")
	fset := token.NewFileSet()
	gc := importer.ForCompiler(fset, "gc", lookup(exports))
	var failures []string
	calls := 0
	for _, p := range pkgs {
		var files []*ast.File
		for _, f := range p.files {
			af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			files = append(files, af)
		}
		info := &types.Info{
			Types: map[ast.Expr]types.TypeAndValue{},
			Uses:  map[*ast.Ident]types.Object{},
			Defs:  map[*ast.Ident]types.Object{},
		}
		conf := types.Config{Importer: gc}
		_, err := conf.Check(p.path, fset, files, info)
		require.NoError(t, err, "type-check %s (does it build?)", p.path)
		c := &sqlChecker{fset: fset, info: info, files: files, root: root}
		calls += c.check()
		failures = append(failures, c.failures...)
	}
	sort.Strings(failures)
	if len(failures) > 0 {
		t.Fatalf("%d of %d database calls take SQL built at run time (values must go in as $n parameters; identifiers through pq.QuoteIdentifier):\n%s",
			len(failures), calls, strings.Join(failures, "\n"))
	}
	require.Positive(t, calls, "no database call found: the check looks in the wrong place")
	t.Logf("%d database calls in %d packages checked", calls, len(pkgs))
}

// sqlCheckFixture holds the patterns the check must tell apart; the lines
// marked BAD are the ones it must report, and only those.
const sqlCheckFixture = `package fixture

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

const qSelect = "SELECT 1"

type target struct{ table, delete string }

var targets = []target{{table: "a", delete: qSelect}, {"b", "DELETE FROM b"}}

type query struct{ text string }

func dynamic(id string) query { return query{text: "SELECT " + id} }

func f(ctx context.Context, db *sqlx.DB, tx *sqlx.Tx, raw *sql.DB, conn *pgx.Conn, name, id string) {
	db.ExecContext(ctx, qSelect)
	db.ExecContext(ctx, "SELECT "+"1")
	db.ExecContext(ctx, "CREATE DATABASE "+pq.QuoteIdentifier(name))
	db.ExecContext(ctx, "SELECT * FROM t WHERE id = '"+id+"'") // BAD
	raw.QueryContext(ctx, fmt.Sprintf("SELECT %s", id))       // BAD
	raw.Exec("DELETE FROM t WHERE id = " + id)                 // BAD
	conn.Exec(ctx, "LISTEN "+name)                             // BAD
	conn.Exec(ctx, "LISTEN "+"channel")
	q := qSelect
	db.ExecContext(ctx, q)
	q2 := "SELECT " + id
	tx.QueryRowxContext(ctx, q2) // BAD
	for _, t := range targets {
		tx.QueryRowxContext(ctx, t.delete)
	}
	tx.QueryRowxContext(ctx, dynamic(id).text) // BAD
	var dest int
	sqlx.GetContext(ctx, db, &dest, "SELECT "+id) // BAD
	db.GetContext(ctx, &dest, qSelect)
	stmt, _ := db.PreparexContext(ctx, qSelect)
	stmt.QueryRowxContext(ctx, id)
	run(ctx, db, qSelect)
	run2(ctx, db, "SELECT "+id)
}

func run(ctx context.Context, db *sqlx.DB, query string)  { db.ExecContext(ctx, query) }
func run2(ctx context.Context, db *sqlx.DB, query string) { db.ExecContext(ctx, query) } // BAD
`

// TestNoStringBuiltSQLCatches proves the check on a fixture: it reports
// exactly the lines marked BAD.
func TestNoStringBuiltSQLCatches(t *testing.T) {
	t.Parallel()
	root := pgtest.RepoRoot()
	_, exports := listPackages(t, root, "./modules/...", "./platform/...")
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, filepath.Join(root, "fixture.go"), sqlCheckFixture, parser.SkipObjectResolution)
	require.NoError(t, err)
	info := &types.Info{Types: map[ast.Expr]types.TypeAndValue{}, Uses: map[*ast.Ident]types.Object{}, Defs: map[*ast.Ident]types.Object{}}
	_, err = (&types.Config{Importer: importer.ForCompiler(fset, "gc", lookup(exports))}).Check("fixture", fset, []*ast.File{f}, info)
	require.NoError(t, err)
	c := &sqlChecker{fset: fset, info: info, files: []*ast.File{f}, root: root}
	c.check()
	var want, got []int
	for i, line := range strings.Split(sqlCheckFixture, "\n") {
		if strings.HasSuffix(line, "// BAD") {
			want = append(want, i+1)
		}
	}
	for _, failure := range c.failures {
		var line int
		_, err := fmt.Sscanf(failure[strings.Index(failure, ":")+1:], "%d:", &line)
		require.NoError(t, err, failure)
		got = append(got, line)
	}
	sort.Ints(got)
	require.Equal(t, want, got, "reported:\n%s", strings.Join(c.failures, "\n"))
}

type listedPackage struct {
	path  string
	files []string
}

// listPackages asks the go command for the packages' non-test files (build
// tags applied) and the compiled export data of every dependency, which
// the type checker imports.
func listPackages(t *testing.T, root string, patterns ...string) ([]listedPackage, map[string]string) {
	t.Helper()
	args := append([]string{"list", "-e", "-export", "-deps", "-f",
		"{{.ImportPath}}\t{{.Export}}\t{{.Dir}}\t{{join .GoFiles \" \"}}\t{{if .DepOnly}}dep{{end}}\t{{with .Error}}{{.}}{{end}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	exports := map[string]string{}
	var pkgs []listedPackage
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		require.Len(t, f, 6, sc.Text())
		path, export, dir, goFiles, depOnly, perr := f[0], f[1], f[2], f[3], f[4], f[5]
		require.Empty(t, perr, "go list %s", path)
		if export != "" {
			exports[path] = export
		}
		if depOnly == "dep" || goFiles == "" {
			continue
		}
		p := listedPackage{path: path}
		for _, name := range strings.Fields(goFiles) {
			p.files = append(p.files, filepath.Join(dir, name))
		}
		pkgs = append(pkgs, p)
	}
	return pkgs, exports
}

func lookup(exports map[string]string) importer.Lookup {
	return func(path string) (io.ReadCloser, error) {
		file, ok := exports[path]
		if !ok {
			return nil, fmt.Errorf("no export data for %s", path)
		}
		return os.Open(file)
	}
}

// sqlChecker finds the database calls of one package and judges their
// query arguments.
type sqlChecker struct {
	fset     *token.FileSet
	info     *types.Info
	files    []*ast.File
	root     string
	failures []string
	// writes lists, per variable or struct field, the expressions ever
	// assigned to it in the package (nil: not computed yet).
	writes map[types.Object][]ast.Expr
	// calls lists, per function, its call sites, for parameters.
	calls map[types.Object][]*ast.CallExpr
}

func (c *sqlChecker) check() int {
	n := 0
	for _, f := range c.files {
		ast.Inspect(f, func(node ast.Node) bool {
			call, ok := node.(*ast.CallExpr)
			if !ok {
				return true
			}
			fn, name := c.callee(call)
			if fn == nil || !dbMethods[name] || fn.Pkg() == nil || !dbPackages[fn.Pkg().Path()] {
				return true
			}
			i := queryParam(fn)
			if i < 0 || i >= len(call.Args) {
				return true // a prepared statement's call: no SQL text here
			}
			n++
			if why := c.unsafe(call.Args[i], map[types.Object]bool{}); why != "" {
				pos := c.fset.Position(call.Args[i].Pos())
				rel, _ := filepath.Rel(c.root, pos.Filename)
				c.failures = append(c.failures, fmt.Sprintf("%s:%d: %s query argument %s: %s", rel, pos.Line, name, c.src(call.Args[i]), why))
			}
			return true
		})
	}
	return n
}

// callee is the function or method a call invokes, and its name.
func (c *sqlChecker) callee(call *ast.CallExpr) (*types.Func, string) {
	var id *ast.Ident
	switch fun := ast.Unparen(call.Fun).(type) {
	case *ast.SelectorExpr:
		id = fun.Sel
	case *ast.Ident:
		id = fun
	default:
		return nil, ""
	}
	fn, _ := c.info.Uses[id].(*types.Func)
	return fn, id.Name
}

// queryParam is the index of the parameter named query or sql, or -1.
func queryParam(fn *types.Func) int {
	sig := fn.Type().(*types.Signature)
	for i := range sig.Params().Len() {
		p := sig.Params().At(i)
		if (p.Name() == "query" || p.Name() == "sql") && types.Identical(p.Type(), types.Typ[types.String]) {
			return i
		}
	}
	return -1
}

// unsafe returns why e may hold text built at run time, or "".
func (c *sqlChecker) unsafe(e ast.Expr, seen map[types.Object]bool) string {
	e = ast.Unparen(e)
	if tv, ok := c.info.Types[e]; ok && tv.Value != nil {
		return "" // a constant expression
	}
	switch x := e.(type) {
	case *ast.BinaryExpr:
		if x.Op != token.ADD {
			return "not a constant"
		}
		if why := c.unsafe(x.X, seen); why != "" {
			return why
		}
		return c.unsafe(x.Y, seen)
	case *ast.CallExpr:
		if fn, name := c.callee(x); fn != nil && fn.Pkg() != nil && fn.Pkg().Path() == "github.com/lib/pq" && name == "QuoteIdentifier" {
			return "" // an identifier, quoted
		}
		return "built by a call to " + c.src(x.Fun)
	case *ast.Ident:
		return c.unsafeVar(c.info.Uses[x], seen)
	case *ast.SelectorExpr:
		if sel, ok := c.info.Uses[x.Sel].(*types.Var); ok {
			return c.unsafeVar(sel, seen)
		}
	}
	return "not a constant"
}

// unsafeVar judges a variable, parameter or struct field by everything the
// package ever assigns to it (or passes for it).
func (c *sqlChecker) unsafeVar(obj types.Object, seen map[types.Object]bool) string {
	v, ok := obj.(*types.Var)
	if !ok {
		return "not a constant"
	}
	if seen[v] {
		return ""
	}
	seen[v] = true
	c.index()
	values, found := c.writes[v], false
	if fn := c.paramOf(v); fn != nil {
		sites := c.calls[fn.obj]
		if len(sites) == 0 {
			return fmt.Sprintf("parameter %s of %s, which is never called in its package", v.Name(), fn.obj.Name())
		}
		for _, call := range sites {
			if fn.index < len(call.Args) {
				values = append(values, call.Args[fn.index])
			}
		}
		found = true
	}
	if len(values) == 0 && !found {
		return fmt.Sprintf("%s is never assigned a constant in its package", v.Name())
	}
	for _, val := range values {
		if why := c.unsafe(val, seen); why != "" {
			return fmt.Sprintf("%s may hold %s (%s)", v.Name(), c.src(val), why)
		}
	}
	return ""
}

type paramRef struct {
	obj   types.Object
	index int
}

// paramOf finds the function whose parameter v is.
func (c *sqlChecker) paramOf(v *types.Var) *paramRef {
	for _, f := range c.files {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok {
				continue
			}
			i := 0
			for _, field := range fd.Type.Params.List {
				for _, name := range field.Names {
					if c.info.Defs[name] == v {
						return &paramRef{obj: c.info.Defs[fd.Name], index: i}
					}
					i++
				}
				if len(field.Names) == 0 {
					i++
				}
			}
		}
	}
	return nil
}

// index collects every assignment to a variable or field and every call
// of a package function.
func (c *sqlChecker) index() {
	if c.writes != nil {
		return
	}
	c.writes = map[types.Object][]ast.Expr{}
	c.calls = map[types.Object][]*ast.CallExpr{}
	target := func(e ast.Expr) types.Object {
		switch x := ast.Unparen(e).(type) {
		case *ast.Ident:
			if o := c.info.Defs[x]; o != nil {
				return o
			}
			return c.info.Uses[x]
		case *ast.SelectorExpr:
			return c.info.Uses[x.Sel]
		}
		return nil
	}
	for _, f := range c.files {
		ast.Inspect(f, func(node ast.Node) bool {
			switch n := node.(type) {
			case *ast.AssignStmt:
				if len(n.Lhs) == len(n.Rhs) {
					for i, l := range n.Lhs {
						if o := target(l); o != nil {
							c.writes[o] = append(c.writes[o], n.Rhs[i])
						}
					}
				} else {
					for _, l := range n.Lhs { // a, b := f(): not a constant
						if o := target(l); o != nil {
							c.writes[o] = append(c.writes[o], n.Rhs[0])
						}
					}
				}
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if o := c.info.Defs[name]; o != nil && i < len(n.Values) {
						c.writes[o] = append(c.writes[o], n.Values[i])
					}
				}
			case *ast.CompositeLit:
				st, ok := c.info.Types[n].Type.Underlying().(*types.Struct)
				if !ok {
					return true
				}
				for i, el := range n.Elts {
					if kv, ok := el.(*ast.KeyValueExpr); ok {
						if key, ok := kv.Key.(*ast.Ident); ok {
							if o := c.info.Uses[key]; o != nil {
								c.writes[o] = append(c.writes[o], kv.Value)
							}
						}
					} else if i < st.NumFields() {
						c.writes[st.Field(i)] = append(c.writes[st.Field(i)], el)
					}
				}
			case *ast.CallExpr:
				if fn, _ := c.callee(n); fn != nil {
					c.calls[fn] = append(c.calls[fn], n)
				}
			}
			return true
		})
	}
}

func (c *sqlChecker) src(e ast.Expr) string {
	var b bytes.Buffer
	_ = printer.Fprint(&b, c.fset, e)
	s := b.String()
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}
