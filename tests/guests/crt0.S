/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Entry point of every test guest and its VMMS ELF note. The worker enters _start in 64-bit
 * ring 3 with RSP=0 and IOPL=3; we clear .bss, switch to our own stack, run main, power off.
 */
#define VMMS_NOTE_RING3 1

	.section .note.vmms, "a", @note
	.balign 4
	.long 5			/* namesz: "VMMS" + NUL */
	.long 0			/* descsz */
	.long VMMS_NOTE_RING3	/* type: start directly in 64-bit ring 3 */
	.asciz "VMMS"
	.balign 4

	.section .text.start, "ax", @progbits
	.globl _start
	.type _start, @function
_start:
	/* The worker loads only file-backed bytes; zero .bss (the stack included) ourselves.
	 * rep stosb needs no stack, so this runs before RSP is valid. */
	cld
	lea __bss_start(%rip), %rdi
	lea __bss_end(%rip), %rcx
	sub %rdi, %rcx
	xor %eax, %eax
	rep stosb
	lea __stack_top(%rip), %rsp
	xor %ebp, %ebp
	call main
	call guest_poweroff
1:	ud2
	jmp 1b
	.size _start, . - _start

	.section .note.GNU-stack, "", @progbits
