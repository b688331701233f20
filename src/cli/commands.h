/* commands.h — the cairn subcommands; each lives in its own cmd_*.c file.
 * A command returns the process exit code: 0 ok, 1 failure, 2 usage error. */
#ifndef CAIRN_COMMANDS_H
#define CAIRN_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_add(int argc, char **argv);
int cmd_rm(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_search(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sync(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_model(int argc, char **argv);      /* model info FILE */
int cmd_quantize(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);   /* tokenize -m MODEL -p TEXT */
int cmd_check(int argc, char **argv);      /* cmd_check.c: exit 0 ok, 1 problems, 2 error */
int cmd_repair(int argc, char **argv);
int cmd_serve(int argc, char **argv);      /* serve [-m MODEL] ... (src/server) */
int cmd_embed(int argc, char **argv);      /* embed -m MODEL TEXT... */
int cmd_ask(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_ls(int argc, char **argv);         /* cmd_ls.c */
int cmd_show(int argc, char **argv);       /* cmd_ls.c */

#endif
