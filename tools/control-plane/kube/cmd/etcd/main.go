// Command etcd is the upstream etcd server. It lives in the same module as the
// Kubernetes binaries so it uses exactly the etcd release that Kubernetes
// itself requires (go.etcd.io/etcd/server/v3 in k8s.io/kubernetes's go.mod),
// and so the two share one dependency graph and one compile cache.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
