// SPDX-License-Identifier: LGPL-2.1-or-later

// An independent varlink client for vpopguardd, built on the reference Go implementation
// (Debian's golang-github-varlink-go-dev): what it accepts, any varlink client can rely on.
// It prints "ok NAME" for each check and exits 1 at the first mismatch.
//
//	varlink-go-client -socket=PATH -version=VERSION -monitor-address=ADDRESS
//
// For the last check it follows Monitor(); once it is sure to receive events it prints
// "monitoring" and waits for the ban of -monitor-address from the journal (the test logs its
// failures then).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/varlink/go/varlink"
	"github.com/varlink/go/varlink/idl"
)

const manager = "io.vpopguard.Manager"

var (
	socketPath     = flag.String("socket", "/run/vpopguard/io.vpopguard.Manager", "the daemon's socket")
	wantVersion    = flag.String("version", "", "the version vpopguardd must report")
	monitorAddress = flag.String("monitor-address", "", "the address whose ban from the journal Monitor() must report")
	monitorTimeout = flag.Duration("monitor-timeout", 30*time.Second, "how long to wait for that ban")
)

var iface *idl.IDL // io.vpopguard.Manager as the daemon describes it

func fail(name string, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "FAIL %s: %s\n", name, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func ok(name string) {
	fmt.Printf("ok %s\n", name)
}

func timeout() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	time.AfterFunc(11*time.Second, cancel) // released once expired
	return ctx
}

func connect(name string) *varlink.Connection {
	c, err := varlink.NewConnection(timeout(), "unix:"+*socketPath)
	if err != nil {
		fail(name, "cannot connect to %s: %v", *socketPath, err)
	}
	return c
}

// call sends one call (parameters nil: the field is left out) and returns the raw reply.
func call(name string, c *varlink.Connection, method string, parameters interface{}) (json.RawMessage, error) {
	receive, err := c.Send(timeout(), method, parameters, 0)
	if err != nil {
		fail(name, "sending %s: %v", method, err)
	}
	var out json.RawMessage
	flags, err := receive(timeout(), &out)
	if err == nil && flags&varlink.Continues != 0 {
		fail(name, "%s replied with continues without \"more\"", method)
	}
	return out, err
}

func mustCall(name string, c *varlink.Connection, method string, parameters interface{}) map[string]interface{} {
	out, err := call(name, c, method, parameters)
	if err != nil {
		fail(name, "%s failed: %v", method, describe(err))
	}
	return decode(name, out)
}

func decode(name string, raw json.RawMessage) map[string]interface{} {
	var v map[string]interface{}
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		fail(name, "reply %q is not a JSON object: %v", raw, err)
	}
	return v
}

func describe(err error) string {
	var e *varlink.Error
	if errors.As(err, &e) {
		if p, isRaw := e.Parameters.(*json.RawMessage); isRaw && p != nil {
			return e.Name + " " + string(*p)
		}
		return e.Name
	}
	return fmt.Sprintf("%T %v", err, err)
}

// wantError checks that err is the varlink error name, with exactly the parameters given, and
// that an error of the daemon's interface is declared there with these fields.
func wantError(name string, err error, errorName string, parameters map[string]string) {
	var got string
	var raw json.RawMessage
	switch e := err.(type) {
	case nil:
		fail(name, "no error, expected %s", errorName)
	case *varlink.InterfaceNotFound:
		got, raw = "org.varlink.service.InterfaceNotFound", mustMarshal(e)
	case *varlink.MethodNotFound:
		got, raw = "org.varlink.service.MethodNotFound", mustMarshal(e)
	case *varlink.InvalidParameter:
		got, raw = "org.varlink.service.InvalidParameter", mustMarshal(e)
	case *varlink.Error:
		got = e.Name
		if p, isRaw := e.Parameters.(*json.RawMessage); isRaw && p != nil {
			raw = *p
		} else {
			raw = json.RawMessage("{}")
		}
	default:
		fail(name, "expected %s, got %s", errorName, describe(err))
	}
	if got != errorName {
		fail(name, "expected %s, got %s", errorName, describe(err))
	}
	p := decode(name, raw)
	if len(p) != len(parameters) {
		fail(name, "%s has parameters %s, expected %v", errorName, raw, parameters)
	}
	for k, v := range parameters {
		if s, isString := p[k].(string); !isString || s != v {
			fail(name, "%s has parameters %s, expected %v", errorName, raw, parameters)
		}
	}
	if strings.HasPrefix(errorName, manager+".") {
		short := strings.TrimPrefix(errorName, manager+".")
		for _, e := range iface.Errors {
			if e.Name == short {
				checkType(name, errorName, e.Type, p)
				return
			}
		}
		fail(name, "%s is not declared in the interface description", errorName)
	}
}

func mustMarshal(v interface{}) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// checkType checks a decoded JSON value against a type of the interface description.
func checkType(name, where string, t *idl.Type, v interface{}) {
	switch t.Kind {
	case idl.TypeMaybe:
		if v != nil {
			checkType(name, where, t.ElementType, v)
		}
		return
	case idl.TypeAlias:
		for _, a := range iface.Aliases {
			if a.Name == t.Alias {
				checkType(name, where, a.Type, v)
				return
			}
		}
		fail(name, "%s: type %s is not declared", where, t.Alias)
	}
	switch t.Kind {
	case idl.TypeBool:
		if _, is := v.(bool); is {
			return
		}
	case idl.TypeInt:
		if n, is := v.(json.Number); is {
			if _, err := n.Int64(); err == nil {
				return
			}
		}
	case idl.TypeFloat:
		if _, is := v.(json.Number); is {
			return
		}
	case idl.TypeString:
		if _, is := v.(string); is {
			return
		}
	case idl.TypeArray:
		if a, is := v.([]interface{}); is {
			for i, e := range a {
				checkType(name, fmt.Sprintf("%s[%d]", where, i), t.ElementType, e)
			}
			return
		}
	case idl.TypeMap:
		if m, is := v.(map[string]interface{}); is {
			for k, e := range m {
				checkType(name, where+"["+k+"]", t.ElementType, e)
			}
			return
		}
	case idl.TypeStruct:
		if m, is := v.(map[string]interface{}); is {
			declared := map[string]bool{}
			for _, f := range t.Fields {
				declared[f.Name] = true
				e, present := m[f.Name]
				if !present && f.Type.Kind != idl.TypeMaybe {
					fail(name, "%s: field %s is missing", where, f.Name)
				}
				checkType(name, where+"."+f.Name, f.Type, e)
			}
			for k := range m {
				if !declared[k] {
					fail(name, "%s: field %s is not in the interface description", where, k)
				}
			}
			return
		}
	case idl.TypeObject:
		return
	}
	fail(name, "%s: %v does not have the declared type (kind %d)", where, v, t.Kind)
}

func method(name, m string) *idl.Method {
	for _, x := range iface.Methods {
		if x.Name == m {
			return x
		}
	}
	fail(name, "method %s is not in the interface description", m)
	return nil
}

// checkReply checks a reply of a method of io.vpopguard.Manager against its declared output.
func checkReply(name, m string, reply map[string]interface{}) {
	checkType(name, m+"()", method(name, m).Out, reply)
}

func names(list []string) string {
	sort.Strings(list)
	return strings.Join(list, " ")
}

func checkInfo(c *varlink.Connection) {
	var vendor, product, version, url string
	var interfaces []string
	if err := c.GetInfo(timeout(), &vendor, &product, &version, &url, &interfaces); err != nil {
		fail("GetInfo", "%v", describe(err))
	}
	if vendor != "vpopguard" || product != "vpopguardd" || version != *wantVersion || url == "" {
		fail("GetInfo", "vendor %q product %q version %q url %q", vendor, product, version, url)
	}
	if names(interfaces) != "io.vpopguard.Manager org.varlink.service" {
		fail("GetInfo", "interfaces %v", interfaces)
	}
	ok("GetInfo")
}

func checkDescriptions(c *varlink.Connection) {
	d, err := c.GetInterfaceDescription(timeout(), manager)
	if err != nil {
		fail("GetInterfaceDescription", "%v", describe(err))
	}
	for _, s := range []string{"interface io.vpopguard.Manager\n", "method GetStatus() -> (", "method ListBans(",
		"method Ban(", "method Unban(", "method Monitor() -> (", "error NotBanned (address: string)"} {
		if !strings.Contains(d, s) {
			fail("GetInterfaceDescription", "no %q in the description", s)
		}
	}
	// Debian 12's library (0.4.0) predates varlink/go#29 and the spec change it follows: its
	// parser still takes only lower-case interface names. The rest is parsed as it is.
	legacy := strings.Replace(d, "\ninterface "+manager+"\n", "\ninterface "+strings.ToLower(manager)+"\n", 1)
	if legacy == d {
		fail("GetInterfaceDescription", "no line \"interface %s\" in the description", manager)
	}
	iface, err = idl.New(legacy)
	if err != nil {
		fail("GetInterfaceDescription", "the reference parser refuses the description: %v", err)
	}
	var methods, errs []string
	for _, m := range iface.Methods {
		methods = append(methods, m.Name)
	}
	for _, e := range iface.Errors {
		errs = append(errs, e.Name)
	}
	if iface.Name != strings.ToLower(manager) ||
		names(methods) != "Ban GetStatus ListBans ListFailures Monitor Reload TestMessage Unban" ||
		names(errs) != "ConfigurationError FirewallError InvalidAddress NoSuchJail NotBanned PermissionDenied" {
		fail("GetInterfaceDescription", "parsed: interface %s, methods %v, errors %v", iface.Name, methods, errs)
	}
	ok("GetInterfaceDescription")

	d, err = c.GetInterfaceDescription(timeout(), "org.varlink.service")
	if err != nil {
		fail("GetInterfaceDescription-service", "%v", describe(err))
	}
	service, err := idl.New(d)
	if err != nil || service.Name != "org.varlink.service" || len(service.Methods) < 2 {
		fail("GetInterfaceDescription-service", "description %q: %v", d, err)
	}
	ok("GetInterfaceDescription-service")

	_, err = c.GetInterfaceDescription(timeout(), "com.example.Nope")
	wantError("InterfaceNotFound", err, "org.varlink.service.InterfaceNotFound", map[string]string{"interface": "com.example.Nope"})
	ok("InterfaceNotFound")
}

func checkUnknown(c *varlink.Connection) {
	_, err := call("MethodNotFound", c, manager+".NoSuchMethod", struct{}{})
	wantError("MethodNotFound", err, "org.varlink.service.MethodNotFound", map[string]string{"method": manager + ".NoSuchMethod"})
	ok("MethodNotFound")
	_, err = call("InterfaceNotFound-call", c, "com.example.Nope.Method", struct{}{})
	wantError("InterfaceNotFound-call", err, "org.varlink.service.InterfaceNotFound", map[string]string{"interface": "com.example.Nope"})
	ok("InterfaceNotFound-call")
}

func checkStatus(c *varlink.Connection) {
	for _, v := range []struct {
		name       string
		parameters interface{}
	}{
		{"GetStatus-omitted", nil},
		{"GetStatus-null", json.RawMessage("null")},
		{"GetStatus-empty", struct{}{}},
	} {
		reply := mustCall(v.name, c, manager+".GetStatus", v.parameters)
		checkReply(v.name, "GetStatus", reply)
		if reply["version"] != *wantVersion {
			fail(v.name, "version %v", reply["version"])
		}
		ok(v.name)
	}
}

func checkParameters(c *varlink.Connection) {
	_, err := call("InvalidParameter-unknown", c, manager+".ListBans", map[string]interface{}{"bogus": 1})
	wantError("InvalidParameter-unknown", err, "org.varlink.service.InvalidParameter", map[string]string{"parameter": "bogus"})
	ok("InvalidParameter-unknown")
	_, err = call("InvalidParameter-type", c, manager+".ListBans", map[string]interface{}{"jail": 5})
	wantError("InvalidParameter-type", err, "org.varlink.service.InvalidParameter", map[string]string{"parameter": "jail"})
	ok("InvalidParameter-type")
	_, err = call("InvalidParameter-missing", c, manager+".Ban", struct{}{})
	wantError("InvalidParameter-missing", err, "org.varlink.service.InvalidParameter", map[string]string{"parameter": "address"})
	ok("InvalidParameter-missing")

	_, err = call("NoSuchJail", c, manager+".ListBans", map[string]string{"jail": "nosuchjail"})
	wantError("NoSuchJail", err, manager+".NoSuchJail", map[string]string{"jail": "nosuchjail"})
	ok("NoSuchJail")
	_, err = call("InvalidAddress", c, manager+".Ban", map[string]string{"address": "300.1.2.3"})
	wantError("InvalidAddress", err, manager+".InvalidAddress", map[string]string{"address": "300.1.2.3"})
	ok("InvalidAddress")
	_, err = call("NotBanned", c, manager+".Unban", map[string]string{"address": "203.0.113.203"})
	wantError("NotBanned", err, manager+".NotBanned", map[string]string{"address": "203.0.113.203"})
	ok("NotBanned")
	_, err = call("ExpectedMore", c, manager+".Monitor", struct{}{})
	wantError("ExpectedMore", err, "org.varlink.service.ExpectedMore", map[string]string{})
	ok("ExpectedMore")
}

func findBan(name string, c *varlink.Connection, address string) map[string]interface{} {
	reply := mustCall(name, c, manager+".ListBans", struct{}{})
	checkReply(name, "ListBans", reply)
	for _, b := range reply["bans"].([]interface{}) {
		if b := b.(map[string]interface{}); b["address"] == address {
			return b
		}
	}
	return nil
}

// A oneway call runs but gets no reply: the next reply on the connection is the next call's.
func checkOneway(c *varlink.Connection) {
	const address = "203.0.113.201"
	if _, err := c.Send(timeout(), manager+".Ban", map[string]interface{}{"address": address, "durationUSec": 60000000}, varlink.Oneway); err != nil {
		fail("oneway", "sending: %v", err)
	}
	reply := mustCall("oneway", c, "org.varlink.service.GetInfo", nil)
	if reply["vendor"] != "vpopguard" {
		fail("oneway", "the call after a oneway call got %v", reply)
	}
	b := findBan("oneway", c, address)
	if b == nil || b["origin"] != "manual" {
		fail("oneway", "the oneway Ban() did not ban %s: %v", address, b)
	}
	reply = mustCall("oneway", c, manager+".Unban", map[string]string{"address": address})
	if len(reply) != 0 {
		fail("oneway", "Unban() replied %v", reply)
	}
	ok("oneway")
}

// Three calls written at once are answered in order.
func checkPipelining(c *varlink.Connection) {
	r1, err1 := c.Send(timeout(), "org.varlink.service.GetInfo", nil, 0)
	r2, err2 := c.Send(timeout(), manager+".GetStatus", nil, 0)
	r3, err3 := c.Send(timeout(), manager+".ListFailures", map[string]string{"address": "192.0.2.250"}, 0)
	if err1 != nil || err2 != nil || err3 != nil {
		fail("pipelining", "sending: %v %v %v", err1, err2, err3)
	}
	var o1, o2, o3 json.RawMessage
	if _, err := r1(timeout(), &o1); err != nil || decode("pipelining", o1)["vendor"] != "vpopguard" {
		fail("pipelining", "first reply %s %v", o1, err)
	}
	if _, err := r2(timeout(), &o2); err != nil || decode("pipelining", o2)["version"] != *wantVersion {
		fail("pipelining", "second reply %s %v", o2, err)
	}
	if _, err := r3(timeout(), &o3); err != nil {
		fail("pipelining", "third reply %s %v", o3, err)
	}
	checkReply("pipelining", "ListFailures", decode("pipelining", o3))
	ok("pipelining")
}

type event struct {
	reply     map[string]interface{}
	continues bool
	err       error
}

func checkMonitor(c *varlink.Connection) {
	const probe = "203.0.113.202"
	m := connect("Monitor")
	receive, err := m.Send(timeout(), manager+".Monitor", struct{}{}, varlink.More)
	if err != nil {
		fail("Monitor", "sending: %v", err)
	}
	events := make(chan event, 64)
	go func() {
		for {
			var out json.RawMessage
			flags, err := receive(context.Background(), &out)
			if err != nil {
				events <- event{err: err}
				return
			}
			events <- event{reply: decode("Monitor", out), continues: flags&varlink.Continues != 0}
		}
	}()
	next := func(deadline time.Time) *event {
		select {
		case e := <-events:
			if e.err != nil {
				fail("Monitor", "the stream ended: %v", describe(e.err))
			}
			checkReply("Monitor", "Monitor", e.reply)
			if !e.continues {
				fail("Monitor", "a reply without continues: %v", e.reply)
			}
			return &e
		case <-time.After(time.Until(deadline)):
			return nil
		}
	}
	address := func(e *event) interface{} {
		b, _ := e.reply["ban"].(map[string]interface{})
		return b["address"]
	}

	// The call is registered once a ban made after it is reported; until then, ban the probe again.
	deadline := time.Now().Add(10 * time.Second)
	for registered := false; !registered; {
		if time.Now().After(deadline) {
			fail("Monitor", "no event for the ban of %s within 10s", probe)
		}
		mustCall("Monitor", c, manager+".Ban", map[string]interface{}{"address": probe, "durationUSec": 60000000})
		mustCall("Monitor", c, manager+".Unban", map[string]string{"address": probe})
		for e := next(time.Now().Add(200 * time.Millisecond)); e != nil; e = next(time.Now().Add(200 * time.Millisecond)) {
			if e.reply["event"] == "unban" && address(e) == probe {
				registered = true
				break
			}
		}
	}
	fmt.Println("monitoring")
	os.Stdout.Sync()

	deadline = time.Now().Add(*monitorTimeout)
	for {
		e := next(deadline)
		if e == nil {
			fail("Monitor", "no ban of %s within %v", *monitorAddress, *monitorTimeout)
		}
		if e.reply["event"] != "ban" || address(e) != *monitorAddress {
			continue
		}
		b := e.reply["ban"].(map[string]interface{})
		if b["origin"] != "journal" || b["jail"] != "vpopmail" {
			fail("Monitor", "the ban of %s is %v", *monitorAddress, b)
		}
		break
	}
	ok("Monitor")
	m.Close()
}

func main() {
	flag.Parse()
	if *wantVersion == "" || *monitorAddress == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: varlink-go-client -socket=PATH -version=VERSION -monitor-address=ADDRESS")
		os.Exit(2)
	}
	c := connect("connect")
	checkInfo(c)
	checkDescriptions(c)
	checkUnknown(c)
	checkStatus(c)
	checkParameters(c)
	checkOneway(c)
	checkPipelining(c)
	checkMonitor(c)
	c.Close()
}
