#include "lib/filter/filter.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "ferry/error.h"
#include "lib/filter/pattern.h"

namespace ferry::filter {
namespace {

constexpr bool kDir = true;
constexpr bool kFile = false;

// Compiles `pattern`, failing the test if it is rejected.
Pattern MustCompile(std::string_view pattern) {
  Result<Pattern> p = Pattern::Compile(pattern);
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.error().Message();
  if (!p.ok()) return Pattern::Compile("/never-matches-anything").value();
  return std::move(p).value();
}

bool Matches(std::string_view pattern, std::string_view path, bool is_dir = kFile) {
  return MustCompile(pattern).Matches(path, is_dir);
}

// Builds a set from rsync-style "+ pattern" / "- pattern" lines.
FilterSet Rules(const std::vector<std::string>& rules) {
  FilterSet set;
  for (const std::string& rule : rules) {
    std::string_view pattern = std::string_view(rule).substr(2);
    Status s = rule[0] == '+' ? set.AddInclude(pattern) : set.AddExclude(pattern);
    EXPECT_TRUE(s.ok()) << rule << ": " << s.error().Message();
  }
  return set;
}

std::string TempPath(const std::string& name) {
  const char* dir = std::getenv("TEST_TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/" + name;
}

void WriteFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// ---------------------------------------------------------------------------
// Pattern: where a pattern may match.

TEST(PatternTest, NameWithoutSlashMatchesFinalComponentAtAnyDepth) {
  EXPECT_TRUE(Matches("foo", "foo"));
  EXPECT_TRUE(Matches("foo", "a/foo"));
  EXPECT_TRUE(Matches("foo", "a/b/foo", kDir));
  EXPECT_FALSE(Matches("foo", "foo/bar"));
  EXPECT_FALSE(Matches("foo", "afoo"));
  EXPECT_FALSE(Matches("foo", "foo.c"));
}

TEST(PatternTest, WildcardWithoutSlashMatchesFinalComponentAtAnyDepth) {
  // rsync: "- *.o" would exclude all names matching *.o.
  EXPECT_TRUE(Matches("*.o", "main.o"));
  EXPECT_TRUE(Matches("*.o", "src/lib/util.o"));
  EXPECT_FALSE(Matches("*.o", "src.o/main.c"));
  EXPECT_FALSE(Matches("*.o", "main.oo"));
}

TEST(PatternTest, TrailingSlashMatchesOnlyDirectories) {
  // rsync: "- foo/" would exclude any directory named foo.
  EXPECT_TRUE(Matches("foo/", "foo", kDir));
  EXPECT_TRUE(Matches("foo/", "a/b/foo", kDir));
  EXPECT_FALSE(Matches("foo/", "foo", kFile));
  EXPECT_FALSE(Matches("foo/", "a/foo", kFile));
  EXPECT_TRUE(MustCompile("foo/").directory_only());
  EXPECT_TRUE(Matches("*.d/", "x/y.d", kDir));
  EXPECT_FALSE(Matches("*.d/", "x/y.d", kFile));
}

TEST(PatternTest, LeadingSlashAnchorsToRoot) {
  // rsync: "- /foo" would exclude a file (or directory) named foo in the
  // transfer-root directory.
  EXPECT_TRUE(Matches("/foo", "foo"));
  EXPECT_TRUE(Matches("/foo", "foo", kDir));
  EXPECT_FALSE(Matches("/foo", "a/foo"));
  EXPECT_FALSE(Matches("/foo", "foo/bar"));
  EXPECT_TRUE(MustCompile("/foo").anchored());
  EXPECT_TRUE(Matches("/src/*.c", "src/a.c"));
  EXPECT_FALSE(Matches("/src/*.c", "lib/src/a.c"));
}

TEST(PatternTest, AnchoredDirectoryPatternNeedsBothRootAndDirectory) {
  EXPECT_TRUE(Matches("/build/", "build", kDir));
  EXPECT_FALSE(Matches("/build/", "build", kFile));
  EXPECT_FALSE(Matches("/build/", "sub/build", kDir));
}

TEST(PatternTest, InnerSlashMatchesTrailingComponentsOfThePath) {
  // rsync: "foo/bar" would match the last 2 elements of the path.
  EXPECT_TRUE(Matches("foo/bar", "foo/bar"));
  EXPECT_TRUE(Matches("foo/bar", "x/y/foo/bar"));
  EXPECT_FALSE(Matches("foo/bar", "xfoo/bar"));
  EXPECT_FALSE(Matches("foo/bar", "foo/bar/baz"));
  EXPECT_FALSE(Matches("foo/bar", "foo/xbar"));
  EXPECT_TRUE(Matches("src/*.c", "src/a.c"));
  EXPECT_TRUE(Matches("src/*.c", "project/src/a.c"));
  EXPECT_FALSE(Matches("src/*.c", "src/sub/a.c"));
  EXPECT_TRUE(Matches("a/*/c", "x/a/b/c"));
}

TEST(PatternTest, InnerSlashWithStarComponentMatchesWholeComponents) {
  // "*/bar" is the last two components; "*" alone cannot eat a '/'.
  EXPECT_TRUE(Matches("*/bar", "foo/bar"));
  EXPECT_TRUE(Matches("*/bar", "a/foo/bar"));
  EXPECT_FALSE(Matches("*/bar", "bar"));
}

// ---------------------------------------------------------------------------
// Pattern: wildcards.

TEST(PatternTest, StarDoesNotCrossDirectories) {
  EXPECT_TRUE(Matches("/a*", "abc"));
  EXPECT_TRUE(Matches("/a*", "a"));
  EXPECT_FALSE(Matches("/a*", "ab/c"));
  EXPECT_TRUE(Matches("/a*/c", "ab/c"));
  EXPECT_FALSE(Matches("/a*c", "ab/c"));
}

TEST(PatternTest, DoubleStarCrossesDirectories) {
  EXPECT_TRUE(Matches("/a**", "ab/c/d"));
  EXPECT_TRUE(Matches("/a**c", "ab/c"));
  EXPECT_TRUE(Matches("/src/**", "src/a"));
  EXPECT_TRUE(Matches("/src/**", "src/a/b/c.txt"));
  EXPECT_FALSE(Matches("/src/**", "src", kDir));
  EXPECT_TRUE(Matches("/src/**.c", "src/a/b/c.c"));
}

TEST(PatternTest, DoubleStarPatternIsMatchedAgainstTheWholePathUnanchored) {
  // With "**" the pattern is matched against the full path, not just the final
  // component, and may still start after any '/'.
  EXPECT_TRUE(Matches("foo**", "foo/bar/baz"));
  EXPECT_TRUE(Matches("foo**", "x/foobar/y"));
  EXPECT_FALSE(Matches("foo**", "xfoo/bar"));
  EXPECT_TRUE(Matches("a/**/z", "a/b/c/z"));
  EXPECT_TRUE(Matches("a/**/z", "top/a/b/z"));
}

TEST(PatternTest, LeadingDoubleStarSlashAlsoMatchesAtTheRoot) {
  // rsync prepends a '/' for a pattern starting with "**", so "**/foo" also
  // matches a root-level "foo".
  EXPECT_TRUE(Matches("**/foo", "foo"));
  EXPECT_TRUE(Matches("**/foo", "a/b/foo"));
  EXPECT_FALSE(Matches("**/foo", "a/foo/b"));
  EXPECT_TRUE(Matches("**", "anything/at/all"));
}

TEST(PatternTest, DoubleStarBetweenSlashesNeedsAtLeastOneDirectory) {
  // rsync: "- /foo/**/bar" excludes any bar two or more levels below /foo.
  EXPECT_TRUE(Matches("/foo/**/bar", "foo/a/bar"));
  EXPECT_TRUE(Matches("/foo/**/bar", "foo/a/b/c/bar"));
  EXPECT_FALSE(Matches("/foo/**/bar", "foo/bar"));
  // rsync: "- /foo/*/bar" excludes any bar exactly two levels below /foo.
  EXPECT_TRUE(Matches("/foo/*/bar", "foo/a/bar"));
  EXPECT_FALSE(Matches("/foo/*/bar", "foo/a/b/bar"));
}

TEST(PatternTest, TripleStarMatchesDirectoryAndContents) {
  EXPECT_TRUE(Matches("dir/***", "dir", kDir));
  EXPECT_TRUE(Matches("dir/***", "dir/file"));
  EXPECT_TRUE(Matches("dir/***", "dir/sub", kDir));
  EXPECT_TRUE(Matches("dir/***", "dir/sub/deep/file"));
  EXPECT_TRUE(Matches("dir/***", "top/dir/file"));
  // "as if dir/ had been specified": a file named dir is not matched.
  EXPECT_FALSE(Matches("dir/***", "dir", kFile));
  EXPECT_FALSE(Matches("dir/***", "dirx/file"));
  EXPECT_TRUE(Matches("/dir/***", "dir", kDir));
  EXPECT_FALSE(Matches("/dir/***", "top/dir", kDir));
}

TEST(PatternTest, DoubleStarSuffixMatchesContentsButNotTheDirectory) {
  EXPECT_TRUE(Matches("subdir/**", "subdir/a"));
  EXPECT_FALSE(Matches("subdir/**", "subdir", kDir));
}

TEST(PatternTest, QuestionMarkMatchesOneByteExceptSlash) {
  EXPECT_TRUE(Matches("a?c", "abc"));
  EXPECT_FALSE(Matches("a?c", "ac"));
  EXPECT_FALSE(Matches("a?c", "abbc"));
  EXPECT_FALSE(Matches("/a?c", "a/c"));
}

TEST(PatternTest, CharacterClassesMatchSetsRangesAndNegations) {
  EXPECT_TRUE(Matches("file[0-9].txt", "file7.txt"));
  EXPECT_FALSE(Matches("file[0-9].txt", "filex.txt"));
  EXPECT_TRUE(Matches("[abc]", "b"));
  EXPECT_FALSE(Matches("[abc]", "d"));
  EXPECT_TRUE(Matches("[!abc]", "d"));
  EXPECT_FALSE(Matches("[!abc]", "a"));
  EXPECT_TRUE(Matches("[^abc]", "d"));
  EXPECT_FALSE(Matches("[^abc]", "c"));
  EXPECT_TRUE(Matches("x[a-cx-z]", "xy"));
  EXPECT_FALSE(Matches("x[a-cx-z]", "xd"));
}

TEST(PatternTest, CharacterClassEdgeCasesFollowRsync) {
  // A ']' right after '[' (or after the negation) is a member.
  EXPECT_TRUE(Matches("[]a]", "]"));
  EXPECT_TRUE(Matches("[!]a]", "b"));
  EXPECT_FALSE(Matches("[!]a]", "]"));
  // A '-' first or last is literal.
  EXPECT_TRUE(Matches("[-a]", "-"));
  EXPECT_TRUE(Matches("[a-]", "-"));
  // Escapes inside a class.
  EXPECT_TRUE(Matches("[\\]]", "]"));
  // POSIX classes.
  EXPECT_TRUE(Matches("[[:digit:]]x", "5x"));
  EXPECT_FALSE(Matches("[[:digit:]]x", "ax"));
  EXPECT_TRUE(Matches("[[:upper:][:digit:]]", "Q"));
  EXPECT_TRUE(Matches("[![:alpha:]]", "_"));
  // A class never matches '/', even negated.
  EXPECT_FALSE(Matches("/a[!x]b", "a/b"));
}

TEST(PatternTest, BackslashEscapesWildcardsInWildcardPatterns) {
  EXPECT_TRUE(Matches("foo\\*", "foo*"));
  EXPECT_FALSE(Matches("foo\\*", "foobar"));
  EXPECT_TRUE(Matches("\\[x]", "[x]"));
  EXPECT_TRUE(Matches("a\\?*", "a?bc"));
  EXPECT_FALSE(Matches("a\\?*", "abc"));
}

TEST(PatternTest, BackslashIsLiteralInPatternsWithoutWildcards) {
  // rsync: "a backslash ... is matched literally when no wildcards are present".
  EXPECT_TRUE(Matches("back\\slash", "back\\slash"));
  EXPECT_FALSE(Matches("back\\slash", "backslash"));
}

TEST(PatternTest, MatchingIsCaseSensitive) {
  EXPECT_FALSE(Matches("*.JPG", "a.jpg"));
  EXPECT_FALSE(Matches("Makefile", "makefile"));
}

TEST(PatternTest, EmptyPathNeverMatches) {
  EXPECT_FALSE(Matches("*", "", kDir));
  EXPECT_FALSE(Matches("**", "", kDir));
}

TEST(PatternTest, DotFilesAreOrdinaryNames) {
  // Unlike a shell glob, '*' matches a leading dot (as in rsync).
  EXPECT_TRUE(Matches("*", ".hidden"));
  EXPECT_TRUE(Matches(".*", "a/.git", kDir));
}

// ---------------------------------------------------------------------------
// Pattern: invalid patterns.

void ExpectInvalid(std::string_view pattern, std::string_view detail_part) {
  Result<Pattern> p = Pattern::Compile(pattern);
  ASSERT_FALSE(p.ok()) << pattern;
  EXPECT_EQ(p.code(), errc::kInvalidArgument);
  EXPECT_NE(p.error().detail.find(detail_part), std::string::npos) << p.error().detail;
}

TEST(PatternTest, EmptyPatternIsInvalid) { ExpectInvalid("", "empty"); }

TEST(PatternTest, OnlySlashesIsInvalid) {
  ExpectInvalid("/", "\"/\"");
  ExpectInvalid("//", "\"//\"");
}

TEST(PatternTest, UnterminatedBracketIsInvalid) {
  ExpectInvalid("foo[abc", "foo[abc");
  ExpectInvalid("[", "unterminated");
  ExpectInvalid("[]", "unterminated");
  ExpectInvalid("[!]", "unterminated");
  ExpectInvalid("a[\\", "unterminated");
  ExpectInvalid("[[:alpha:]", "unterminated");
}

TEST(PatternTest, NulByteIsInvalidAndShownEscaped) {
  ExpectInvalid(std::string_view("a\0b", 3), "a\\x00b");
}

TEST(PatternTest, UnknownPosixClassIsInvalid) { ExpectInvalid("[[:nope:]]", "[:nope:]"); }

TEST(PatternTest, TrailingBackslashInWildcardPatternIsInvalid) { ExpectInvalid("*\\", "*\\"); }

TEST(PatternTest, BracketWithoutWildcardSyntaxIsFine) {
  // A lone ']' is an ordinary byte, and "[:" without ":]" is a literal '['.
  EXPECT_TRUE(Matches("a]", "a]"));
  EXPECT_TRUE(Matches("[[:x]", "["));
}

// ---------------------------------------------------------------------------
// Pattern: no exponential blow-up.

TEST(PatternTest, PathologicalStarsFinishOnLongInput) {
  const std::string many_a(10000, 'a');
  EXPECT_FALSE(Matches("*a*a*a*a*a*a*b", many_a));
  EXPECT_TRUE(Matches("*a*a*a*a*a*a*b", many_a + "b"));
  EXPECT_FALSE(Matches("/**a**a**a**a**a**a**b", many_a));

  // Deep paths exercise the "try after every '/'" mode too.
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "a/";
  deep += "a";
  EXPECT_FALSE(Matches("a/*a*a*a*a*b", deep));
  EXPECT_FALSE(Matches("a**a**a**a**a**b", deep));
  EXPECT_TRUE(Matches("a**a**a**a**a", deep));

  // A long pattern against a long name.
  std::string stars;
  for (int i = 0; i < 500; ++i) stars += "*a";
  EXPECT_FALSE(Matches(stars + "b", many_a));
}

// ---------------------------------------------------------------------------
// Pattern: differential check of the matcher core against a direct
// (exponential, but fine at this size) transcription of rsync's rules.

// rsync's wildmatch on a whole string: '*' stops at '/', "**" does not.
bool RefWild(std::string_view p, std::string_view t) {
  if (p.empty()) return t.empty();
  if (p[0] == '*') {
    size_t k = 0;
    while (k < p.size() && p[k] == '*') ++k;
    const bool cross = k >= 2;
    for (size_t i = 0; i <= t.size(); ++i) {
      if (RefWild(p.substr(k), t.substr(i))) return true;
      if (i < t.size() && !cross && t[i] == '/') return false;
    }
    return false;
  }
  if (t.empty()) return false;
  if (p[0] == '?') return t[0] != '/' && RefWild(p.substr(1), t.substr(1));
  if (p[0] == '\\') return p.size() > 1 && t[0] == p[1] && RefWild(p.substr(2), t.substr(1));
  if (p[0] == '[') {  // only the simple classes the generator makes
    const size_t close = p.find(']', 1);
    const bool neg = p[1] == '!';
    const std::string_view members = p.substr(neg ? 2 : 1, close - (neg ? 2 : 1));
    const bool in = members.find(t[0]) != std::string_view::npos;
    return t[0] != '/' && in != neg && RefWild(p.substr(close + 1), t.substr(1));
  }
  return p[0] == t[0] && RefWild(p.substr(1), t.substr(1));
}

// rsync's rule_matches() for an unanchored wildcard pattern, on a file.
bool RefUnanchored(std::string_view p, std::string_view t) {
  const bool slash = p.find('/') != std::string_view::npos;
  const bool dstar = p.find("**") != std::string_view::npos;
  if (!slash && !dstar) return RefWild(p, t.substr(t.rfind('/') + 1));
  if (p.starts_with("**")) return RefWild(p, "/" + std::string(t));
  for (size_t start = 0;; ++start) {
    if (RefWild(p, t.substr(start))) return true;
    start = t.find('/', start);
    if (start == std::string_view::npos) return false;
  }
}

TEST(PatternTest, MatcherAgreesWithReferenceOnRandomInputs) {
  const std::vector<std::string> atoms = {"a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "\\*"};
  const std::string text_bytes = "ab/*";
  std::mt19937 rng(12345);
  int compared = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string p;
    const int len = 1 + rng() % 6;
    for (int i = 0; i < len; ++i) p += atoms[rng() % atoms.size()];
    std::string t;
    const int tlen = 1 + rng() % 8;
    for (int i = 0; i < tlen; ++i) t += text_bytes[rng() % text_bytes.size()];
    if (p.find_first_of("*?[") == std::string::npos) continue;  // literal mode
    if (p.back() == '/' || p.front() == '/') continue;          // dir-only / anchor
    if (t.front() == '/' || t.back() == '/' || t.find("//") != std::string::npos) continue;
    ++compared;
    ASSERT_EQ(MustCompile("/" + p).Matches(t, kFile), RefWild(p, t))
        << "anchored pattern /" << p << " path " << t;
    ASSERT_EQ(MustCompile(p).Matches(t, kFile), RefUnanchored(p, t))
        << "pattern " << p << " path " << t;
  }
  EXPECT_GT(compared, 5000);
}

// ---------------------------------------------------------------------------
// FilterSet: rule order and rsync's examples.

TEST(FilterSetTest, EmptySetExcludesNothing) {
  FilterSet set;
  EXPECT_TRUE(set.empty());
  EXPECT_FALSE(set.Excluded("a", kFile));
  EXPECT_FALSE(set.ExcludedWithParents("a/b/c", kFile));
  ASSERT_TRUE(set.AddExclude("x").ok());
  EXPECT_FALSE(set.empty());
}

TEST(FilterSetTest, UnmatchedPathIsIncluded) {
  FilterSet set = Rules({"- *.o", "- /tmp"});
  EXPECT_FALSE(set.Excluded("main.c", kFile));
  EXPECT_FALSE(set.Excluded("src/tmp", kDir));
  EXPECT_TRUE(set.Excluded("tmp", kDir));
}

TEST(FilterSetTest, FirstMatchingRuleWins) {
  FilterSet set = Rules({"- *.log", "+ keep.log", "+ *.txt", "- notes.txt"});
  EXPECT_TRUE(set.Excluded("keep.log", kFile));    // "- *.log" came first
  EXPECT_FALSE(set.Excluded("notes.txt", kFile));  // "+ *.txt" came first
}

TEST(FilterSetTest, IncludeBeforeExcludeKeepsFile) {
  FilterSet set = Rules({"+ important.log", "- *.log"});
  EXPECT_FALSE(set.Excluded("important.log", kFile));
  EXPECT_FALSE(set.Excluded("var/important.log", kFile));
  EXPECT_TRUE(set.Excluded("debug.log", kFile));
}

TEST(FilterSetTest, IncludeAllDirectoriesAndCSourcesOnly) {
  // rsync: "+ */", "+ *.c", "- *" include all directories and C source files
  // but nothing else.
  FilterSet set = Rules({"+ */", "+ *.c", "- *"});
  EXPECT_FALSE(set.Excluded("src", kDir));
  EXPECT_FALSE(set.Excluded("src/deep", kDir));
  EXPECT_FALSE(set.Excluded("src/deep/x.c", kFile));
  EXPECT_TRUE(set.Excluded("src/deep/x.h", kFile));
  EXPECT_TRUE(set.Excluded("README", kFile));
  EXPECT_FALSE(set.ExcludedWithParents("src/deep/x.c", kFile));
}

TEST(FilterSetTest, IncludeOnlyFooAndFooBarC) {
  // rsync: "+ foo/", "+ foo/bar.c", "- *" include only the foo directory and
  // foo/bar.c (foo must be included explicitly or "- *" would exclude it).
  FilterSet set = Rules({"+ foo/", "+ foo/bar.c", "- *"});
  EXPECT_FALSE(set.Excluded("foo", kDir));
  EXPECT_FALSE(set.Excluded("foo/bar.c", kFile));
  EXPECT_TRUE(set.Excluded("foo/baz.c", kFile));
  EXPECT_TRUE(set.Excluded("other", kDir));
  EXPECT_TRUE(set.Excluded("foo", kFile));  // a file named foo is not "foo/"
}

TEST(FilterSetTest, ExcludedParentHidesIncludedChildOnlyWithParents) {
  // rsync: with "+ /some/path/this-file-will-not-be-found", "+ /file-is-included",
  // "- *", the file is never found because "- *" excludes /some first.
  FilterSet set = Rules({"+ /some/path/this-file-will-not-be-found", "+ /file-is-included", "- *"});
  const std::string deep = "some/path/this-file-will-not-be-found";
  EXPECT_FALSE(set.Excluded(deep, kFile));            // the rule alone matches...
  EXPECT_TRUE(set.ExcludedWithParents(deep, kFile));  // ...but "some" is excluded
  EXPECT_FALSE(set.ExcludedWithParents("file-is-included", kFile));
}

TEST(FilterSetTest, IncludingEachParentMakesDeepFileReachable) {
  // rsync's fix for the example above.
  FilterSet set = Rules({"+ /some/", "+ /some/path/", "+ /some/path/this-file-is-found",
                         "+ /file-also-included", "- *"});
  EXPECT_FALSE(set.ExcludedWithParents("some/path/this-file-is-found", kFile));
  EXPECT_FALSE(set.ExcludedWithParents("file-also-included", kFile));
  EXPECT_TRUE(set.ExcludedWithParents("some/path/other", kFile));
  EXPECT_TRUE(set.ExcludedWithParents("some/other/x", kFile));
}

TEST(FilterSetTest, IncludeSubtreeWithDoubleStarAndTripleStar) {
  // rsync: "+ /some/", "+ /some/path/***", "- *" (or "+ /some/path/**"
  // plus "+ /some/path/") keeps one subtree and nothing else.
  FilterSet set = Rules({"+ /some/", "+ /some/path/***", "- *"});
  EXPECT_FALSE(set.ExcludedWithParents("some/path", kDir));
  EXPECT_FALSE(set.ExcludedWithParents("some/path/a/b/c", kFile));
  EXPECT_TRUE(set.ExcludedWithParents("some/other", kFile));
  EXPECT_TRUE(set.ExcludedWithParents("top", kFile));
}

TEST(FilterSetTest, ExcludedDirectoryHidesEverythingBelowWithParents) {
  FilterSet set = Rules({"- .git/", "- node_modules/"});
  EXPECT_TRUE(set.Excluded(".git", kDir));
  EXPECT_FALSE(set.Excluded(".git/config", kFile));  // one path at a time
  EXPECT_TRUE(set.ExcludedWithParents(".git/config", kFile));
  EXPECT_TRUE(set.ExcludedWithParents("web/node_modules/x/y.js", kFile));
  EXPECT_FALSE(set.ExcludedWithParents("web/src/y.js", kFile));
  EXPECT_FALSE(set.ExcludedWithParents(".gitignore", kFile));
}

TEST(FilterSetTest, InvalidPatternLeavesSetUnchanged) {
  FilterSet set;
  Status s = set.AddExclude("bad[");
  EXPECT_EQ(s.code(), errc::kInvalidArgument);
  EXPECT_NE(s.error().detail.find("bad["), std::string::npos);
  EXPECT_TRUE(set.empty());
  EXPECT_EQ(set.AddInclude("").code(), errc::kInvalidArgument);
  EXPECT_TRUE(set.empty());
}

// ---------------------------------------------------------------------------
// FilterSet: --exclude-from / --include-from files.

TEST(FilterSetTest, RulesFromFileSkipBlankAndCommentLines) {
  const std::string path = TempPath("rules.txt");
  WriteFile(path, "# build outputs\n*.o\n\n; editor files\n*~\n/build/\n");
  FilterSet set;
  ASSERT_TRUE(set.AddRulesFromFile(path, /*include=*/false).ok());
  EXPECT_TRUE(set.Excluded("a/b.o", kFile));
  EXPECT_TRUE(set.Excluded("notes.txt~", kFile));
  EXPECT_TRUE(set.Excluded("build", kDir));
  EXPECT_FALSE(set.Excluded("# build outputs", kFile));
  EXPECT_FALSE(set.Excluded("main.c", kFile));
}

TEST(FilterSetTest, RulesFromFileHandleCrlfAndMissingFinalNewline) {
  const std::string path = TempPath("crlf.txt");
  WriteFile(path, "*.tmp\r\n#c\r\nlast");
  FilterSet set;
  ASSERT_TRUE(set.AddRulesFromFile(path, false).ok());
  EXPECT_TRUE(set.Excluded("x.tmp", kFile));
  EXPECT_TRUE(set.Excluded("last", kFile));
  EXPECT_FALSE(set.Excluded("x.tmp\r", kFile));
}

TEST(FilterSetTest, RulesFromFileAsIncludesComeInFileOrder) {
  const std::string path = TempPath("includes.txt");
  WriteFile(path, "*/\n*.c\n");
  FilterSet set;
  ASSERT_TRUE(set.AddRulesFromFile(path, /*include=*/true).ok());
  ASSERT_TRUE(set.AddExclude("*").ok());
  EXPECT_FALSE(set.Excluded("src", kDir));
  EXPECT_FALSE(set.Excluded("src/a.c", kFile));
  EXPECT_TRUE(set.Excluded("src/a.h", kFile));
}

TEST(FilterSetTest, RulesFromFileKeepsSpacesAndPrefixCharacters) {
  // Nothing is trimmed, and rsync's "+ "/"- " prefixes are not interpreted.
  const std::string path = TempPath("spaces.txt");
  WriteFile(path, "trailing \n- dash\n");
  FilterSet set;
  ASSERT_TRUE(set.AddRulesFromFile(path, false).ok());
  EXPECT_TRUE(set.Excluded("trailing ", kFile));
  EXPECT_FALSE(set.Excluded("trailing", kFile));
  EXPECT_TRUE(set.Excluded("- dash", kFile));
  EXPECT_FALSE(set.Excluded("dash", kFile));
}

TEST(FilterSetTest, MissingRulesFileIsAnErrorNamingThePath) {
  const std::string path = TempPath("does-not-exist.txt");
  FilterSet set;
  Status s = set.AddRulesFromFile(path, false);
  EXPECT_EQ(s.code(), std::errc::no_such_file_or_directory);
  EXPECT_NE(s.error().detail.find(path), std::string::npos) << s.error().detail;
  EXPECT_TRUE(set.empty());
}

TEST(FilterSetTest, DirectoryAsRulesFileIsAnError) {
  FilterSet set;
  Status s = set.AddRulesFromFile(TempPath(""), false);
  EXPECT_EQ(s.code(), std::errc::is_a_directory);
  EXPECT_TRUE(set.empty());
}

TEST(FilterSetTest, BadLineInRulesFileNamesLineAndAddsNothing) {
  const std::string path = TempPath("bad.txt");
  WriteFile(path, "*.o\r\n# ok\r\nsrc/[oops\r\n");
  FilterSet set;
  Status s = set.AddRulesFromFile(path, false);
  EXPECT_EQ(s.code(), errc::kInvalidArgument);
  EXPECT_NE(s.error().detail.find(path + ":3:"), std::string::npos) << s.error().detail;
  EXPECT_NE(s.error().detail.find("src/[oops"), std::string::npos) << s.error().detail;
  EXPECT_TRUE(set.empty());
}

TEST(FilterSetTest, CopiesAreIndependent) {
  FilterSet a = Rules({"- *.o"});
  FilterSet b = a;
  ASSERT_TRUE(b.AddExclude("*.c").ok());
  EXPECT_FALSE(a.Excluded("x.c", kFile));
  EXPECT_TRUE(b.Excluded("x.c", kFile));
}

}  // namespace
}  // namespace ferry::filter
