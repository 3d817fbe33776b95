import { createRecordingLogger, DEFAULT_WORKLOAD_INTERFACE_PREFIX, workloadInterfaceName } from "@margay/api";
import { createCalcGraph } from "@margay/policy";
import { describe, expect, it } from "vitest";
import { DATAPLANE_DEFAULTS } from "../defaults.js";
import { isDataplaneError } from "../errors.js";
import { namedNetns } from "../kernel/netns.js";
import type { CommandRunner, RunOptions } from "../kernel/runner.js";
import { createLinuxDataplane } from "../linux/linux-driver.js";
import { createWorkloadPlumber } from "./plumbing.js";

// `echo -n default.nginx | sha1sum` → c440f455693b…: the same golden value the kube-adapter's convertPod
// test asserts for pod default/nginx, so the plumber, convertPod and the driver are held to one name.
const NGINX = { namespace: "default", workload: "nginx" } as const;
const NGINX_IF = "mgyc440f455693b";

const noKernel: CommandRunner = {
  async run() {
    throw new Error("no command expected");
  },
};

function kernelWithLinks(links: string[]) {
  const nft: string[] = [];
  const runner: CommandRunner = {
    async run(argv: readonly string[], options: RunOptions = {}) {
      if (argv.includes("nft")) nft.push(options.stdin ?? "");
      const isLinkList = argv.includes("link") && argv.includes("show") && !argv.includes("dev");
      const stdout = isLinkList ? JSON.stringify(links.map((ifname) => ({ ifname }))) : "[]";
      return { code: 0, stdout: argv.includes("-json") ? stdout : "", stderr: "" };
    },
  };
  return { nft, runner };
}

describe("one name for one interface", () => {
  it("the plumber names a workload's veth with workloadInterfaceName and the one default prefix", () => {
    const plumber = createWorkloadPlumber({ runner: noKernel, hostNetns: namedNetns("h") });
    expect(DATAPLANE_DEFAULTS.ifPrefix).toBe(DEFAULT_WORKLOAD_INTERFACE_PREFIX);
    expect(plumber.hostIfName(NGINX)).toBe(workloadInterfaceName(NGINX));
    expect(plumber.hostIfName(NGINX)).toBe(NGINX_IF);
    const cali = createWorkloadPlumber({ runner: noKernel, hostNetns: namedNetns("h"), ifPrefix: "cali" });
    expect(cali.hostIfName(NGINX)).toBe("calic440f455693");
  });

  it("bad prefixes and identities are typed errors, never a crash or an over-long name", () => {
    const err = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    expect(
      isDataplaneError(
        err(() => createWorkloadPlumber({ runner: noKernel, hostNetns: namedNetns("h"), ifPrefix: "Bad!" })),
        "invalid-options",
      ),
    ).toBe(true);
    const plumber = createWorkloadPlumber({ runner: noKernel, hostNetns: namedNetns("h") });
    expect(
      isDataplaneError(
        err(() => plumber.hostIfName({ namespace: "", workload: "x" })),
        "invalid-name",
      ),
    ).toBe(true);
    expect(
      isDataplaneError(
        err(() =>
          createLinuxDataplane({
            netns: namedNetns("x"),
            nodeName: "a",
            runner: noKernel,
            nftables: { workloadPrefixes: ["toolongprefix"] },
          }),
        ),
        "invalid-options",
      ),
    ).toBe(true);
  });

  it("the driver polices the plumber's interface under its endpoint, and drops and logs one with no endpoint", async () => {
    const plumberName = createWorkloadPlumber({ runner: noKernel, hostNetns: namedNetns("h") }).hostIfName(
      NGINX,
    );
    const orphan = workloadInterfaceName({ namespace: "default", workload: "gone" });
    const { nft, runner } = kernelWithLinks(["lo", "eth0", plumberName, orphan, "calia0000000000"]);
    const logger = createRecordingLogger();
    const d = createLinuxDataplane({
      netns: namedNetns("x"),
      nodeName: "a",
      runner,
      logger,
      reconcileIntervalMs: 0,
    });
    const graph = createCalcGraph({ nodeName: "a" });
    graph.upsert({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: { name: "a-k8s-nginx-eth0", namespace: "default", labels: {} },
      // What convertPod writes for pod default/nginx (see the kube-adapter test): the same name.
      spec: { node: "a", interfaceName: NGINX_IF, ipNetworks: ["10.0.0.2/32"], profiles: [] },
    });
    graph.markInSync();
    await d.apply([...graph.flush(), { kind: "in-sync" }]);
    const table = nft.join("\n");
    expect(table).toContain(`iifname "${DEFAULT_WORKLOAD_INTERFACE_PREFIX}*" jump wl-from-dispatch`);
    expect(table).toMatch(new RegExp(`"${plumberName}" : goto `));
    expect(table).not.toContain(`"${orphan}"`);
    // The dispatch chain ends in drop: an interface missing from the map is dropped.
    expect(table).toMatch(/chain wl-from-dispatch \{\n\s+iifname vmap @wl-from\n\s+drop\n/);
    expect(d.unclaimedInterfaces).toEqual([orphan]);
    expect(logger.find({ level: "warn" })).toEqual([
      {
        level: "warn",
        message: "workload interface has no endpoint; its traffic is dropped",
        attributes: { component: "dataplane", ifname: orphan },
      },
    ]);
    // Logged once, not at every check.
    await d.reconcile();
    expect(logger.find({ level: "warn" })).toHaveLength(1);
    // An endpoint naming it claims it at once, without waiting for the next check.
    graph.upsert({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: { name: "a-k8s-gone-eth0", namespace: "default", labels: {} },
      spec: { node: "a", interfaceName: orphan, ipNetworks: ["10.0.0.3/32"], profiles: [] },
    });
    await d.apply(graph.flush());
    expect(d.unclaimedInterfaces).toEqual([]);
    await d.close();
  });

  it("lists the links at the first in-sync, at a reconcile and after an endpoint removal only, not per batch", async () => {
    const { runner: kernel } = kernelWithLinks(["lo", "eth0", NGINX_IF]);
    let listings = 0;
    const runner: CommandRunner = {
      run(argv, options) {
        if (argv.includes("link") && argv.includes("show") && !argv.includes("dev")) listings++;
        return kernel.run(argv, options);
      },
    };
    const d = createLinuxDataplane({ netns: namedNetns("x"), nodeName: "a", runner, reconcileIntervalMs: 0 });
    const graph = createCalcGraph({ nodeName: "a" });
    graph.markInSync();
    await d.apply([...graph.flush(), { kind: "in-sync" }]);
    expect(listings).toBe(1);
    graph.upsert({
      apiVersion: "margay.io/v1",
      kind: "WorkloadEndpoint",
      metadata: { name: "a-k8s-nginx-eth0", namespace: "default", labels: {} },
      spec: { node: "a", interfaceName: NGINX_IF, ipNetworks: ["10.0.0.2/32"], profiles: [] },
    });
    await d.apply(graph.flush());
    await d.apply([{ kind: "route-update", dst: "10.0.0.2/32", type: "local-workload", ifname: NGINX_IF }]);
    expect(listings).toBe(1);
    graph.remove({ kind: "WorkloadEndpoint", namespace: "default", name: "a-k8s-nginx-eth0" });
    await d.apply(graph.flush());
    expect(listings).toBe(2);
    expect(d.unclaimedInterfaces).toEqual([NGINX_IF]);
    await d.reconcile();
    expect(listings).toBe(3);
    await d.close();
  });
});
