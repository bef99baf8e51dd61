// Checks packaging/kubernetes/ against the API schemas of Kubernetes (kubernetes-models) and of
// the Prometheus Operator (@kubernetes-models/prometheus-operator): every document must be of a
// known kind and valid, and the PrometheusRule must hold exactly dashboards/prometheus/rules.yml.
// `node check.mjs SOURCE_DIR` checks; `node check.mjs SOURCE_DIR --write` writes the
// PrometheusRule from rules.yml.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { isDeepStrictEqual } from "node:util";
import { parse, parseAllDocuments, stringify } from "yaml";
import { ConfigMap } from "kubernetes-models/v1";
import { DaemonSet } from "kubernetes-models/apps/v1";
import { PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const [source, mode] = process.argv.slice(2);
const dir = `${source}/packaging/kubernetes`;
const rules = parse(readFileSync(`${source}/dashboards/prometheus/rules.yml`, "utf8"));

const ruleFile = `${dir}/prometheusrule.yaml`;
if (mode === "--write") {
  const rule = {
    apiVersion: "monitoring.coreos.com/v1",
    kind: "PrometheusRule",
    metadata: { name: "vnet-exporter", namespace: "monitoring", labels: { "app.kubernetes.io/name": "vnet-exporter" } },
    spec: { groups: rules.groups },
  };
  writeFileSync(ruleFile, "# dashboards/prometheus/rules.yml for the Prometheus Operator, written by\n" +
    "# `node tests/kubernetes/check.mjs . --write`; ctest kubernetes fails when they differ.\n" + stringify(rule));
}

const models = {
  "v1/ConfigMap": ConfigMap,
  "apps/v1/DaemonSet": DaemonSet,
  "monitoring.coreos.com/v1/PodMonitor": PodMonitor,
  "monitoring.coreos.com/v1/PrometheusRule": PrometheusRule,
};
let failed = 0, checked = 0;
for (const file of readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort()) {
  for (const doc of parseAllDocuments(readFileSync(`${dir}/${file}`, "utf8"))) {
    if (doc.errors.length) {
      console.error(`${file}: ${doc.errors[0].message}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    const key = `${obj.apiVersion}/${obj.kind}`;
    const Model = models[key];
    try {
      if (!Model) throw new Error(`no schema for ${key} here`);
      new Model(obj).validate();
      if (obj.kind === "PrometheusRule" && !isDeepStrictEqual(obj.spec.groups, rules.groups)) {
        throw new Error("spec.groups differ from dashboards/prometheus/rules.yml (run check.mjs --write)");
      }
      console.log(`${file}: ${key} ${obj.metadata.name}: valid`);
      checked++;
    } catch (e) {
      console.error(`${file}: ${key} ${obj.metadata?.name}: ${e.message}`);
      failed++;
    }
  }
}
if (failed || checked === 0) process.exit(1);
