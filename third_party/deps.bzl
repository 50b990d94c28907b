"""Every external repository ferry needs, declared without any download.

Bazel 4.2.3's built-in WORKSPACE suffix asks for rules_cc, rules_java and
remote_coverage_tools over the network unless they are declared first; the suffix
uses `maybe`, so the repositories declared here win. System libraries come from
Debian packages (tools/setup installs them) and are exposed by
//third_party:BUILD, so no repository is needed for them.
"""

# Bazel 4.2.3 has the C++ rules built in; Debian's rules_cc 0.0.4 needs Bazel >= 5.
# This stand-in forwards each rule to the native one, which is what rules_cc was
# for Bazel 4. Moving to upstream rules_cc on a newer Bazel replaces this rule.
_RULES_CC_DEFS = '''
def cc_binary(**kwargs):
    native.cc_binary(**kwargs)

def cc_import(**kwargs):
    native.cc_import(**kwargs)

def cc_library(**kwargs):
    native.cc_library(**kwargs)

def cc_proto_library(**kwargs):
    native.cc_proto_library(**kwargs)

def cc_test(**kwargs):
    native.cc_test(**kwargs)

def cc_toolchain(**kwargs):
    native.cc_toolchain(**kwargs)

def cc_toolchain_suite(**kwargs):
    native.cc_toolchain_suite(**kwargs)

def fdo_prefetch_hints(**kwargs):
    native.fdo_prefetch_hints(**kwargs)

def fdo_profile(**kwargs):
    native.fdo_profile(**kwargs)

def objc_import(**kwargs):
    native.objc_import(**kwargs)

def objc_library(**kwargs):
    native.objc_library(**kwargs)

'''

def _rules_cc_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "rules_cc")\n')
    ctx.file("BUILD", "")
    ctx.file("cc/BUILD", 'alias(name = "toolchain_type", actual = "@bazel_tools//tools/cpp:toolchain_type", visibility = ["//visibility:public"])\n')
    ctx.file("cc/defs.bzl", _RULES_CC_DEFS)

_rules_cc = repository_rule(implementation = _rules_cc_impl)

# Only `bazel test` asks for this repository; coverage itself is not supported.
def _remote_coverage_tools_impl(ctx):
    ctx.file("WORKSPACE", 'workspace(name = "remote_coverage_tools")\n')
    ctx.file("BUILD", """
filegroup(name = "coverage_report_generator", visibility = ["//visibility:public"])
filegroup(name = "lcov_merger", visibility = ["//visibility:public"])
""")

_remote_coverage_tools = repository_rule(implementation = _remote_coverage_tools_impl)

def ferry_dependencies():
    """Declares ferry's external repositories. Call it from a WORKSPACE."""
    existing = native.existing_rules()
    if "rules_cc" not in existing:
        _rules_cc(name = "rules_cc")
    if "rules_java" not in existing:
        # Installed by Debian's bazel-rules-java package.
        native.local_repository(name = "rules_java", path = "/usr/share/bazel/rules/java")
    if "remote_coverage_tools" not in existing:
        _remote_coverage_tools(name = "remote_coverage_tools")
