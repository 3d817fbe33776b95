import { describe, expect, it } from "vitest";
import {
  cachedSelector,
  entityRuleSelectorText,
  policySelectorText,
  serviceAccountSelectorText,
} from "./selectors.js";

const canon = (s: string) => (s === "" ? "" : cachedSelector(s).canonical);

describe("Calico selector composition", () => {
  it("confines a namespaced rule's selector to the policy's namespace", () => {
    expect(canon(entityRuleSelectorText({ selector: "app == 'a'" }, "ns1", "r"))).toBe(
      '(projectcalico.org/namespace == "ns1" && app == "a")',
    );
  });

  it("leaves a rule without selector fields unrestricted (nets only)", () => {
    expect(entityRuleSelectorText({ nets: ["10.0.0.0/8"] }, "ns1", "r")).toBe("");
  });

  it("adds the namespace for a notSelector alone (the notSelector itself stays raw)", () => {
    expect(canon(entityRuleSelectorText({ notSelector: "app == 'a'" }, "ns1", "r"))).toBe(
      'projectcalico.org/namespace == "ns1"',
    );
  });

  it("prefixes namespace selectors with pcns. and maps all()/global()", () => {
    expect(canon(entityRuleSelectorText({ namespaceSelector: "team == 'red'" }, "ns1", "r"))).toBe(
      'pcns.team == "red"',
    );
    expect(canon(entityRuleSelectorText({ namespaceSelector: "all()" }, undefined, "r"))).toBe(
      "has(projectcalico.org/namespace)",
    );
    expect(canon(entityRuleSelectorText({ namespaceSelector: "global()" }, "ns1", "r"))).toBe(
      "!has(projectcalico.org/namespace)",
    );
    expect(
      canon(
        entityRuleSelectorText(
          { namespaceSelector: "team == 'red'", selector: "app == 'a'" },
          undefined,
          "r",
        ),
      ),
    ).toBe('(pcns.team == "red" && app == "a")');
  });

  it("combines service accounts (pcsa. selector and names) with the selector", () => {
    expect(canon(serviceAccountSelectorText({ names: ["b", "a"], selector: "owner == 'x'" }))).toBe(
      '(pcsa.owner == "x" && projectcalico.org/serviceaccount in {"a", "b"})',
    );
    expect(
      canon(
        entityRuleSelectorText({ serviceAccounts: { names: ["a"] }, selector: "app == 'a'" }, "ns1", "r"),
      ),
    ).toBe(
      '(projectcalico.org/namespace == "ns1" && (projectcalico.org/serviceaccount in {"a"} && app == "a"))',
    );
  });

  it("scopes policy selectors: namespace for NetworkPolicy, namespaceSelector and SA selector for global", () => {
    expect(canon(policySelectorText({}, "ns1"))).toBe('projectcalico.org/namespace == "ns1"');
    expect(canon(policySelectorText({ selector: "app == 'a'" }, "ns1"))).toBe(
      '(app == "a" && projectcalico.org/namespace == "ns1")',
    );
    expect(canon(policySelectorText({}, undefined))).toBe("all()");
    expect(
      canon(
        policySelectorText(
          { selector: "app == 'a'", namespaceSelector: "all()", serviceAccountSelector: "owner == 'x'" },
          undefined,
        ),
      ),
    ).toBe('((app == "a" && has(projectcalico.org/namespace)) && pcsa.owner == "x")');
  });

  it("reports unparsable selectors as invalid-input", () => {
    expect(() =>
      cachedSelector(entityRuleSelectorText({ selector: "app ==" }, "ns", "spec.ingress[0].source")),
    ).toThrow(expect.objectContaining({ code: "invalid-input" }));
    expect(() => entityRuleSelectorText({ namespaceSelector: "team in" }, "ns", "r")).toThrow(
      expect.objectContaining({ code: "invalid-input" }),
    );
  });
});
