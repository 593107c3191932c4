// One network operation by go-git (the Git library of Argo CD, Flux, Gitea
// and many Go tools), for tests/other_clients.rs; the same interface as
// drive.py: `drive-go-git OP ARGS...`, one JSON object on stdout.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/http"
)

// What the C git unshallow asks for (`deepen 2147483647`).
const unshallow = 2147483647

func auth() transport.AuthMethod {
	if token, ok := os.LookupEnv("DRIVE_TOKEN"); ok {
		return &http.BasicAuth{Username: "token", Password: token}
	}
	return nil
}

func depthOf(arg string) int {
	depth, err := strconv.Atoi(arg)
	if err != nil {
		panic(err)
	}
	if depth < 0 {
		return unshallow
	}
	return depth
}

func run(op string, args []string) (map[string]interface{}, error) {
	out := map[string]interface{}{}
	switch op {
	case "clone":
		options := &git.CloneOptions{URL: args[0], Depth: depthOf(args[2]), Auth: auth()}
		if args[3] != "-" {
			options.ReferenceName = plumbing.NewBranchReferenceName(args[3])
			options.SingleBranch = true
		}
		_, err := git.PlainClone(args[1], false, options)
		return out, err
	case "fetch":
		repo, err := git.PlainOpen(args[0])
		if err != nil {
			return out, err
		}
		err = repo.Fetch(&git.FetchOptions{Depth: depthOf(args[1]), Auth: auth(), Tags: git.AllTags})
		if errors.Is(err, git.NoErrAlreadyUpToDate) {
			err = nil
		}
		return out, err
	case "push":
		repo, err := git.PlainOpen(args[0])
		if err != nil {
			return out, err
		}
		remote, err := repo.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{args[1]}})
		if err != nil {
			return out, err
		}
		refs := map[string]interface{}{}
		var specs []config.RefSpec
		for _, spec := range args[2:] {
			specs = append(specs, config.RefSpec(spec))
			dst := spec[strings.LastIndex(spec, ":")+1:]
			refs[dst] = nil
		}
		err = remote.Push(&git.PushOptions{RemoteName: "anonymous", RefSpecs: specs, Auth: auth()})
		// go-git reports the first refused ref as an error.
		if err != nil && strings.HasPrefix(err.Error(), "command error on ") {
			rest := strings.TrimPrefix(err.Error(), "command error on ")
			if i := strings.Index(rest, ": "); i > 0 {
				refs[rest[:i]] = rest[i+2:]
				err = nil
			}
		}
		out["refs"] = refs
		return out, err
	case "fetch-sha":
		repo, err := git.PlainInit(args[0], true)
		if err != nil {
			return out, err
		}
		remote, err := repo.CreateRemoteAnonymous(&config.RemoteConfig{Name: "anonymous", URLs: []string{args[1]}})
		if err != nil {
			return out, err
		}
		spec := config.RefSpec(fmt.Sprintf("+%s:refs/commit/%s", args[2], args[2]))
		err = remote.Fetch(&git.FetchOptions{RefSpecs: []config.RefSpec{spec}, Depth: depthOf(args[3]), Auth: auth()})
		return out, err
	}
	return out, fmt.Errorf("unknown operation %s", op)
}

func main() {
	out, err := run(os.Args[1], os.Args[2:])
	if err != nil {
		out = map[string]interface{}{"ok": false, "error": err.Error()}
	} else {
		out["ok"] = true
	}
	text, _ := json.Marshal(out)
	fmt.Println(string(text))
}
