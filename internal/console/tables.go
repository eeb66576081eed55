package console

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"sluice/internal/api"
	"sluice/pipeline/civil"
)

// tableView is the table page: the partitions as a grid of months and
// days, their list, and the schema's versions.
type tableView struct {
	api.TablePartitions
	Months         []gridMonth
	Prev, NextPage string // the ranges before and after
	CheckLink      string
	Rebuilds       int // with inputs checked: partitions a run would rebuild
}

// gridMonth is a row of the grid: a month's days 1 to 31.
type gridMonth struct {
	Label string
	Days  []gridDay
}

// gridDay is a cell: a date of the range (with its partition), or a blank.
type gridDay struct {
	Day   int
	Date  string
	Class string // published, empty, missing, future, blank; rebuild when a run would
	Title string
}

func (c *Console) tablePage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := api.PartitionsRequest{From: q.Get("from"), To: q.Get("to"), CheckInputs: q.Get("check") == "inputs"}
	tp, err := c.svc.Partitions(r.Context(), r.PathValue("table"), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d := c.base(r, "Table "+tp.Table)
	d.Table = tableViewOf(tp, time.Now())
	c.render(w, "table", d)
}

func tableViewOf(tp api.TablePartitions, now time.Time) *tableView {
	v := &tableView{TablePartitions: tp}
	from, _ := civil.Parse(tp.From)
	to, _ := civil.Parse(tp.To)
	days := int(to.Days() - from.Days() + 1)
	page := func(a, b civil.Date) string {
		return "/console/tables/" + tp.Table + "?" + url.Values{"from": {a.String()}, "to": {b.String()}}.Encode()
	}
	v.Prev = page(from.AddDays(-days), from.AddDays(-1))
	v.NextPage = page(to.AddDays(1), to.AddDays(days))
	v.CheckLink = page(from, to) + "&check=inputs"
	byDate := map[string]api.TablePartition{}
	for _, p := range tp.Partitions {
		byDate[p.Date] = p
		if p.Rebuild != nil && *p.Rebuild {
			v.Rebuilds++
		}
	}
	today := civil.DateOf(now.UTC())
	for m := (civil.Date{Year: from.Year, Month: from.Month, Day: 1}); !to.Before(m); m = (civil.Date{Year: m.Year, Month: m.Month + 1, Day: 1}).Normalize() {
		gm := gridMonth{Label: fmt.Sprintf("%s %d", m.Month.String()[:3], m.Year)}
		for day := 1; day <= 31; day++ {
			d := civil.Date{Year: m.Year, Month: m.Month, Day: day}
			cell := gridDay{Day: day, Class: "blank"}
			if d.Normalize() == d {
				if p, ok := byDate[d.String()]; ok {
					cell.Date, cell.Class = p.Date, p.State
					cell.Title = fmt.Sprintf("%s: %s", p.Date, p.State)
					if p.State != api.PartitionMissing {
						cell.Title += fmt.Sprintf(", %d rows in %d files", p.Rows, p.Files)
						if p.BuiltAt != nil {
							cell.Title += ", built " + p.BuiltAt.Format("2006-01-02 15:04Z")
						}
					}
					if today.Before(d) {
						cell.Class = "future"
					}
					if p.Rebuild != nil && *p.Rebuild {
						cell.Class += " rebuild"
						cell.Title += "; a run would rebuild it: " + p.Reason
					}
				}
			}
			gm.Days = append(gm.Days, cell)
		}
		v.Months = append(v.Months, gm)
	}
	return v
}

// tableDryRun dry-runs the window of the dates picked on the table page
// (from the first to the last: a run covers a window), offering to start
// it.
func (c *Console) tableDryRun(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		c.fail(w, r, &api.Error{Status: http.StatusBadRequest, Err: err})
		return
	}
	picked := slices.Sorted(slices.Values(r.Form["date"]))
	if len(picked) == 0 {
		c.fail(w, r, &api.Error{Status: http.StatusBadRequest, Err: fmt.Errorf("pick the dates to reprocess in the grid first")})
		return
	}
	t, err := c.svc.Orch.Table(r.PathValue("table"))
	if err != nil {
		c.fail(w, r, &api.Error{Status: http.StatusNotFound, Err: err})
		return
	}
	req := api.StartRequest{Workflow: t.Workflow, Start: picked[0], End: picked[len(picked)-1], Force: r.FormValue("force") != "", AllowShrink: r.FormValue("allow_shrink") != "", DryRun: true}
	res, err := c.svc.Start(r.Context(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v := dryRunView{DryRun: res.DryRun, Signed: c.guard.Signed(r), Req: req, Start: true}
	if from, err := civil.Parse(req.Start); err == nil {
		if to, err := civil.Parse(req.End); err == nil && int(to.Days()-from.Days()+1) != len(picked) {
			v.Picked = picked
		}
	}
	c.render(w, "dry-run", v)
}
