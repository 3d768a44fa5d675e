/*
 * A main() for the fuzz targets without libFuzzer (cJSON's
 * fuzzing/fuzz_main.c is the model): runs LLVMFuzzerTestOneInput once on
 * each file named on the command line, and on every file of each directory
 * named (in name order). So the same targets, built with gcc and the
 * sanitizers, replay their corpus as ordinary ctest tests; a crash, a
 * sanitizer report or a leak fails the test. Prints how many inputs ran.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static unsigned long ran, unreadable;

/* Reads all of path; NULL on error. The buffer is exactly *len bytes long
 * (malloc(0) aside), so that ASan sees a read past the end of the input. */
static uint8_t *
slurp(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	uint8_t *data = NULL, *grown;
	size_t n = 0, cap = 0, got;
	char chunk[65536];

	if (fp == NULL)
		return NULL;
	while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if (n + got > cap) {
			cap = (n + got) * 2;
			if ((grown = realloc(data, cap)) == NULL) {
				free(data);
				fclose(fp);
				return NULL;
			}
			data = grown;
		}
		memcpy(data + n, chunk, got);
		n += got;
	}
	fclose(fp);
	/* Exactly n bytes: a copy of the right size. */
	grown = malloc(n ? n : 1);
	if (grown == NULL) {
		free(data);
		return NULL;
	}
	if (n)
		memcpy(grown, data, n);
	free(data);
	*len = n;
	return grown;
}

static void
run_file(const char *path)
{
	size_t len = 0;
	uint8_t *data = slurp(path, &len);

	if (data == NULL) {
		fprintf(stderr, "%s: cannot read: %s\n", path, strerror(errno));
		unreadable++;
		return;
	}
	LLVMFuzzerTestOneInput(data, len);
	free(data);
	ran++;
}

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
run_path(const char *path)
{
	struct stat st;
	struct dirent *de;
	DIR *d;
	char **names = NULL, **grown, full[4096];
	size_t n = 0, i;

	if (stat(path, &st) == -1) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		unreadable++;
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		run_file(path);
		return;
	}
	if ((d = opendir(path)) == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		unreadable++;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if ((grown = realloc(names, (n + 1) * sizeof(*names))) == NULL)
			break;
		names = grown;
		if ((names[n] = strdup(de->d_name)) == NULL)
			break;
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	for (i = 0; i < n; i++) {
		snprintf(full, sizeof(full), "%s/%s", path, names[i]);
		run_path(full);
		free(names[i]);
	}
	free(names);
}

int
main(int argc, char **argv)
{
	int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
		return 2;
	}
	LLVMFuzzerInitialize(&argc, &argv);
	for (i = 1; i < argc; i++)
		run_path(argv[i]);
	printf("replayed %lu input(s)\n", ran);
	if (ran == 0) {
		fprintf(stderr, "no input found: the corpus is empty\n");
		return 1;
	}
	return unreadable ? 1 : 0;
}
