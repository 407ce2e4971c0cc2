// eu_search_tree_init/fini for a static libelf that lacks them.
//
// elfutils 0.192's libelf.a (bookworm-backports' libelf-dev) calls them from elf_begin and
// elf_end but does not hold them: they are in elfutils' internal libeu, which only the
// shared libelf has inside (sourceware bug 32293, fixed in 0.193). meson.build links this
// file only when libelf.a does not link alone and does with it.
//
// As the shared libelf.so.1 of the same build defines them (objdump -d): Debian builds
// elfutils without --enable-thread-safety, so a search_tree is its root and a lock that is
// nothing, and init and fini touch the root only. libelf uses the trees through its own
// inline tsearch/tfind on that root (eu-search.h); none of them is called from here.
#define _GNU_SOURCE  // tdestroy
#include <search.h>
#include <stddef.h>

// elfutils' search_tree: `void *root` first (eu-search.h), then a lock absent in this build.
struct eu_search_tree_head {
    void* root;
};

void eu_search_tree_init(struct eu_search_tree_head* tree);
void eu_search_tree_fini(struct eu_search_tree_head* tree, void (*free_node)(void*));

void eu_search_tree_init(struct eu_search_tree_head* tree)
{
    tree->root = NULL;
}

void eu_search_tree_fini(struct eu_search_tree_head* tree, void (*free_node)(void*))
{
    tdestroy(tree->root, free_node);
    tree->root = NULL;
}
